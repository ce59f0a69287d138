"""Camera reads and the 24-hour rule (DESIGN §12), as pure functions."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from ctplhub.anpr.simulate import ReadMaker, _misread
from ctplhub.domain.anpr import (
    ONE_ALERT_PER,
    Alert,
    Dropped,
    DropReason,
    PlateRead,
    ReadParser,
    one_per_day,
    parse_read,
)
from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.identifiers import Plate
from ctplhub.services.demo_fleet import FleetVehicle

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def payload(**overrides: object) -> bytes:
    body = {
        "read_id": "cam-1-000001",
        "camera_id": "cam-1",
        "region_code": "320505",
        "plate": "苏Ｅ１２３４５",  # full-width: §2.1 normalises it
        "seen_at": "2026-12-01T10:00:00+08:00",
        "confidence": 0.95,
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_a_good_read_is_parsed_with_its_plate_normalised() -> None:
    parsed = parse_read(payload(), min_confidence=0.9, now=NOW)
    assert isinstance(parsed, PlateRead)
    assert parsed.plate.display == "苏E·12345"
    assert parsed.seen_at == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_reads_are_dropped_with_their_reason() -> None:
    cases = {
        b"not json": DropReason.MALFORMED,
        b"[1]": DropReason.MALFORMED,
        payload(read_id=None): DropReason.MALFORMED,
        payload(region_code="3205"): DropReason.MALFORMED,
        payload(confidence=1.5): DropReason.MALFORMED,
        payload(confidence=True): DropReason.MALFORMED,
        payload(confidence=0.8999): DropReason.LOW_CONFIDENCE,
        payload(plate="苏E1234I"): DropReason.INVALID_PLATE,
        payload(plate="苏E1234"): DropReason.INVALID_PLATE,
        payload(seen_at="2026-12-01T10:00:00"): DropReason.INVALID_INSTANT,
        payload(seen_at="2026-10-01T10:00:00+08:00"): DropReason.TOO_OLD,
    }
    for raw, reason in cases.items():
        assert parse_read(raw, min_confidence=0.9, now=NOW) == Dropped(reason), raw


_VARIANTS = [
    payload(),
    payload(plate="苏E·12345"),  # the same plate, written otherwise
    payload(plate="苏E1234I"),  # refused
    payload(plate=12345),  # not a string
    payload(seen_at="2026-12-01T10:00:00"),  # no offset
    payload(seen_at="2026-12-01T11:00:00+08:00"),
    payload(seen_at="2026-10-01T10:00:00+08:00"),  # too old
    payload(confidence=0.5),
    payload(read_id="cam-1-000002", plate="沪A·44444"),
    b"{",
]


@given(st.lists(st.sampled_from(_VARIANTS), max_size=40), st.integers(1, 4))
def test_a_parser_that_remembers_answers_each_read_as_parsing_it_alone_does(
    payloads: list[bytes], remembered: int
) -> None:
    parser = ReadParser(0.9)
    with patch("ctplhub.domain.anpr.REMEMBERED", remembered):  # starts afresh often
        for raw in payloads:
            assert parser.parse(raw, NOW) == parse_read(raw, min_confidence=0.9, now=NOW)
            assert parser.parse(bytearray(raw), NOW) == parse_read(raw, min_confidence=0.9, now=NOW)


def alert(read_id: str, hours: float, plate: str = "苏E12345", region: str = "320505") -> Alert:
    return Alert(
        read_id, read_id, "cam", region, Plate.parse(plate), NOW + timedelta(hours=hours),
        CoverageStatus.NO_RECORD, None,
    )  # fmt: skip


def test_one_alert_per_plate_and_region_in_any_24_hours() -> None:
    kept = [("苏E12345", "320505", NOW)]
    candidates = [
        alert("a", 23.9),  # too close to the kept one
        alert("b", 24),  # exactly 24 h later: allowed
        alert("c", 30),  # too close to b
        alert("d", 1, region="310115"),  # another region
        alert("e", 1, plate="苏E54321"),  # another plate
        alert("f", -24),  # a day before the kept one
    ]
    raised = one_per_day(kept, candidates)
    assert sorted(a.read_id for a in raised) == ["b", "d", "e", "f"]


@given(st.lists(st.floats(min_value=-200, max_value=200), max_size=12), st.randoms())
def test_the_rule_ignores_arrival_order_and_never_lets_two_close_alerts_through(
    hours: list[float], rng: random.Random
) -> None:
    candidates = [alert(f"r{n}", h) for n, h in enumerate(hours)]
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    raised = one_per_day([], candidates)
    assert [a.read_id for a in one_per_day([], shuffled)] == [a.read_id for a in raised]
    times = sorted(a.seen_at for a in raised)
    assert all(b - a >= ONE_ALERT_PER for a, b in itertools.pairwise(times))
    if candidates:
        assert raised  # the earliest always goes through


def test_simulated_reads_are_realistic_and_repeatable() -> None:
    covered = [FleetVehicle("苏E·12345", "320505", CoverageStatus.ACTIVE)]
    uncovered = [FleetVehicle("苏E·67890", "320505", CoverageStatus.LAPSED)]

    def reads(seed: int) -> list[tuple[str, bytes]]:
        maker = ReadMaker(
            covered, uncovered, cameras=3, uninsured_share=0.3, seed=seed, clock=lambda: NOW
        )
        return [(r.kind, r.payload) for r in (maker.next() for _ in range(2_000))]

    first = reads(5)
    assert first == reads(5)
    kinds = {kind for kind, _ in first}
    assert kinds == {"covered", "uncovered", "ocr_error", "low_confidence", "repeat"}
    parsed = [parse_read(p, min_confidence=0.9, now=NOW) for _, p in first]
    assert any(isinstance(p, PlateRead) for p in parsed)
    assert any(p == Dropped(DropReason.LOW_CONFIDENCE) for p in parsed)
    rng = random.Random(3)
    misreads = {_misread("苏E·D8015", rng) for _ in range(200)}
    assert "苏ED8015" not in misreads  # always wrong: one confusion or one dropped character
    assert {len(m) for m in misreads} == {6, 7}
    assert any("B" in m or m.startswith("苏E0") for m in misreads)  # 8/B, D/0


def test_simulated_cameras_stand_in_the_regions_given() -> None:
    vehicle = FleetVehicle("苏E·12345", "320505", CoverageStatus.ACTIVE)
    maker = ReadMaker(
        [vehicle], [], cameras=4, uninsured_share=0, seed=1, clock=lambda: NOW,
        regions=["110105", "440305", "510107", "320505"],
    )  # fmt: skip
    seen = {}
    for read in (maker.next() for _ in range(400)):
        body = json.loads(read.payload)
        seen.setdefault(body["camera_id"], set()).add(body["region_code"])
    assert sorted(r for regions in seen.values() for r in regions) == [
        "110105", "320505", "440305", "510107"
    ]  # fmt: skip
    assert all(len(regions) == 1 for regions in seen.values())  # a camera does not move
