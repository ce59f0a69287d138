"""The register feed and the daily match against in-memory fakes of their ports (STYLE.md
example 8): duplicates and conflicts within and across chunks, the retry after a lost
race, pages that add up to the whole list whatever their size, opaque cursors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.errors import InsurerMismatch, ValidationFailed
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.domain.policy import EventType
from ctplhub.domain.register import RegisterLine, RegisterStatus
from ctplhub.domain.vehicle import VehicleHistory, VehicleSnapshot
from ctplhub.services import register_feed
from ctplhub.services.enforcement import (
    Enforcement,
    UninsuredQuery,
    decode_cursor,
    encode_cursor,
    uninsured_query,
)
from ctplhub.services.match_counts import UninsuredCounter
from ctplhub.services.ports import Reader, RetryableConflict
from ctplhub.services.register_feed import RegisterFeed
from ctplhub.services.register_ports import InForcePolicy, RegisterKey
from ctplhub.services.report_events import LineStatus

NOW = datetime(2026, 6, 1, 2, tzinfo=UTC)


def vin(n: int) -> str:
    return with_vin_check_digit(f"LSVAU{n:03d}0N2183294")


class FakeRegister:
    def __init__(self) -> None:
        self.lines: dict[RegisterKey, RegisterLine] = {}
        self.races_to_lose = 0
        self.policies: list[tuple[str, InForcePolicy]] = []
        self.candidate_calls = 0

    def add_new(
        self, lines: Sequence[RegisterLine], received_at: datetime
    ) -> dict[RegisterKey, str]:
        if self.races_to_lose:
            self.races_to_lose -= 1
            raise RetryableConflict("lost")
        held = {
            (x.vin, x.as_of): self.lines[(x.vin, x.as_of)].content_hash
            for x in lines
            if (x.vin, x.as_of) in self.lines
        }
        for x in lines:
            self.lines.setdefault((x.vin, x.as_of), x)
        return held

    def candidates(self, prefix: str, after: str | None, limit: int) -> list[str]:
        self.candidate_calls += 1
        vins = sorted({v for (v, _), x in self.lines.items() if x.region_code.startswith(prefix)})
        return [v for v in vins if after is None or v > after][:limit]

    def lines_of(self, vins: Sequence[str]) -> dict[str, list[RegisterLine]]:
        found: dict[str, list[RegisterLine]] = {}
        for (v, _), x in self.lines.items():
            if v in vins:
                found.setdefault(v, []).append(x)
        return found

    def in_force(
        self, insurer_code: str, at: datetime, chunk: int
    ) -> Iterator[list[InForcePolicy]]:
        mine = sorted(
            (p for code, p in self.policies if code == insurer_code), key=lambda p: p.policy_no
        )
        for start in range(0, len(mine), chunk):
            yield mine[start : start + chunk]

    def insurer_codes(self) -> list[str]:
        return sorted({code for code, _ in self.policies})


class FakeReader:
    def __init__(self, covered: Iterable[str]) -> None:
        self.covered = set(covered)
        self.asked: list[Sequence[str]] = []

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        self.asked.append(vins)
        start = NOW - timedelta(days=30)
        return VehicleSnapshot(
            VehicleHistory(
                v,
                (),
                (
                    PolicyState(
                        "PICC", f"P{v}", 1, EventType.ISSUE, start, start + timedelta(days=365)
                    ),
                ),
                None,
            )
            for v in vins
            if v in self.covered
        )


class FakeLog:
    def __init__(self) -> None:
        self.read: list[str] = []

    def record(self, reader: Reader, vin: str, at: datetime) -> None:
        self.read.append(vin)

    def record_many(self, reader: Reader, vins: Iterable[str], at: datetime) -> None:
        self.read += list(vins)


def raw(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "vin": vin(n),
        "plate": f"苏E1{n:04d}",
        "vehicle_type": "truck",
        "region_code": "320505",
        "status": "registered",
        "as_of": "2026-01-01T00:00:00+08:00",
        **changes,
    }


def test_duplicates_and_conflicts_are_found_within_a_chunk_and_across_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(register_feed, "CHUNK_SIZE", 2)
    register = FakeRegister()
    feed = RegisterFeed(register, lambda: NOW)
    lines = [
        (1, raw(1)),
        (2, raw(1)),  # same chunk, same line
        (3, raw(1, status="scrapped")),  # next chunk, same key, other content
        (4, raw(1, plate="苏E·10001")),  # the same line in another spelling
        (5, raw(2)),
        (6, raw(2, region_code="320506")),  # same chunk, other content
    ]
    results = [(r.line, r.status, r.error.code if r.error else None) for r in feed.feed(lines)]
    assert results == [
        (1, LineStatus.ACCEPTED, None),
        (2, LineStatus.DUPLICATE, None),
        (3, LineStatus.REJECTED, "conflict"),
        (4, LineStatus.DUPLICATE, None),
        (5, LineStatus.ACCEPTED, None),
        (6, LineStatus.REJECTED, "conflict"),
    ]
    assert len(register.lines) == 2


def test_a_lost_race_is_retried_and_then_given_up() -> None:
    register = FakeRegister()
    register.races_to_lose = 1
    assert [r.status for r in RegisterFeed(register, lambda: NOW).feed([(1, raw(1))])] == [
        LineStatus.ACCEPTED
    ]
    register.races_to_lose = 5
    with pytest.raises(RetryableConflict):
        list(RegisterFeed(register, lambda: NOW).feed([(1, raw(2))]))


def test_cursors_are_opaque_and_checked() -> None:
    cursor = encode_cursor(vin(7))
    assert vin(7) not in cursor and decode_cursor(cursor) == vin(7)
    assert decode_cursor(None) is None
    for bad in ("", "abc", "u1.!!!!", "u1." + "A" * 80, 5, encode_cursor("SHORT")):
        with pytest.raises(ValidationFailed):
            decode_cursor(bad)


def test_the_query_body_is_checked() -> None:
    query = uninsured_query({"region_prefix": "3205"}, NOW)
    assert (query.region_prefix, query.at, query.after, query.limit) == ("3205", NOW, None, 100)
    for body in (
        {"region_prefix": "3205", "limit": True},
        {"region_prefix": "3205", "limit": "10"},
        {"region_prefix": "3205", "limit": 1001},
        {"limit": 10},
        {"region_prefix": "3205", "page": 2},
    ):
        with pytest.raises(ValidationFailed):
            uninsured_query(body, NOW)


def fleet(register: FakeRegister, count: int) -> None:
    """Vehicles 0..count-1: every third scrapped, every fifth in another city."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        status = RegisterStatus.SCRAPPED if n % 3 == 0 else RegisterStatus.REGISTERED
        region = "320600" if n % 5 == 0 else "320505"
        register.lines[(vin(n), at)] = RegisterLine(
            vin(n), f"苏E1{n:04d}", "truck", region, status, at
        )


def pages(service: Enforcement, limit: int) -> list[list[str]]:
    found: list[list[str]] = []
    after = None
    while True:
        page = asyncio.run(
            service.uninsured(UninsuredQuery("3205", NOW, after, limit), reader=READER)
        )
        found.append([v.vin for v in page.vehicles])
        if page.next_cursor is None:
            return found
        after = decode_cursor(page.next_cursor)


READER = Reader("officer", "police", "uninsured_list")


@settings(max_examples=25)
@given(limit=st.integers(1, 40), covered=st.sets(st.integers(0, 59)))
def test_pages_of_any_size_add_up_to_the_list_in_vin_order(limit: int, covered: set[int]) -> None:
    register = FakeRegister()
    fleet(register, 60)
    log = FakeLog()
    reader = FakeReader(vin(n) for n in covered)
    service = Enforcement(
        register, reader, lambda: NOW, access_log=log, reminder_window=timedelta(days=30)
    )
    expected = [vin(n) for n in range(60) if n % 3 and n % 5 and n not in covered]
    got = pages(service, limit)
    assert [v for page in got for v in page] == expected
    assert all(len(page) == limit for page in got[:-1])
    assert log.read == expected
    # Coverage was read only for the registered candidates of the region, never scrapped.
    assert not {vin(n) for n in range(0, 60, 3)} & {v for asked in reader.asked for v in asked}


@settings(max_examples=25)
@given(
    batch=st.integers(1, 25),
    covered=st.sets(st.integers(0, 59)),
    prefix=st.sampled_from(["", "32", "3205", "320600", "33"]),
)
def test_the_matchs_counts_are_the_uninsured_lists_pages_counted(
    batch: int, covered: set[int], prefix: str
) -> None:
    """The match counts in one pass of its own (``UninsuredCounter``, batches of any size,
    the next batch read ahead): the same vehicles as the paged list, by region."""
    register = FakeRegister()
    fleet(register, 60)
    reader = FakeReader(vin(n) for n in covered)
    service = Enforcement(
        register, reader, lambda: NOW, access_log=FakeLog(), reminder_window=timedelta(days=30)
    )
    listed: dict[str, int] = {}
    query = UninsuredQuery(prefix, NOW, None, 7)

    async def walk() -> None:
        async for page in service.all_uninsured(query, reader=None):
            for v in page.vehicles:
                listed[v.region_code] = listed.get(v.region_code, 0) + 1

    asyncio.run(walk())
    counter = UninsuredCounter(register, reader, batch=batch)
    seen: list[int] = []
    assert asyncio.run(counter.by_region(NOW, prefix, seen.append)) == listed
    assert seen[-1] == sum(listed.values()) and seen == sorted(seen)
    assert asyncio.run(service.match(NOW, prefix)).uninsured_by_region == listed


def test_the_unmatched_list_names_each_reason_and_skips_scrapped_vehicles() -> None:
    register = FakeRegister()
    fleet(register, 4)  # 0 and 3 scrapped, 1 and 2 registered
    register.policies = [
        ("PICC", InForcePolicy("P0", vin(0), "苏E10000")),
        ("PICC", InForcePolicy("P1", vin(1), "苏E10001")),
        ("PICC", InForcePolicy("P2", vin(2), "苏E99999")),
        ("PICC", InForcePolicy("P9", vin(9), "苏E10009")),
        ("CPIC", InForcePolicy("C1", vin(3), "苏E10003")),
    ]
    service = Enforcement(
        register,
        FakeReader(()),
        lambda: NOW,
        access_log=FakeLog(),
        reminder_window=timedelta(days=30),
    )
    found = service.unmatched("PICC", caller="PICC")
    assert [(p.policy_no, p.reason, p.register_plate) for p in found] == [
        ("P2", "plate_differs", "苏E10002"),
        ("P9", "vin_not_registered", None),
    ]
    with pytest.raises(InsurerMismatch):
        service.unmatched("PICC", caller="CPIC")
    report = asyncio.run(service.match(NOW, "32"))
    assert report.unmatched_by_insurer == {
        "CPIC": {"vin_not_registered": 0, "plate_differs": 0},
        "PICC": {"vin_not_registered": 1, "plate_differs": 1},
    }
    assert report.uninsured_by_region == {"320505": 2}  # 0 and 3 are scrapped
