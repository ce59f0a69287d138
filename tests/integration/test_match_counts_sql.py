"""The daily match counted in SQL (``store/repositories/match_counts.py``) gives the same
figures as the Python rules it replaced (``Enforcement.match_in_python``: the register's
line at T per VIN, ``covered_at`` over the vehicle's policies read through the coverage
read path, each insurer's unmatched list), on both engines, for random small registers
and event histories: lines out of order and older than others, scrapped and deregistered
vehicles, moves between regions, plate changes by endorsement, surrenders and cancels
(with a later version that arrived before the cancel, §2.4), policies of vehicles the
register does not know, and instants on the edges of every interval."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.services.enforcement import MatchReport
from ctplhub.services.report_events import LineStatus
from ctplhub.store.maintenance import REGISTER_TABLES, SqlPlannerStatistics
from ctplhub.store.repositories.match_counts import SqlMatchCounts
from helpers import InsurerAccount, bearer_headers, event, run_reads

BASE = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = (0, 10, 100, 200, 365, 400, 600)  # every instant below is one of these days
INSURERS = ("PICC", "PINGAN")
PLATES = ("苏E10001", "苏E10002", "苏E20003")
REGIONS = ("320505", "320506", "320600", "330100")
PREFIXES = ("", "32", "3205", "320505", "33")
_serial = itertools.count(1)


def day(n: int) -> datetime:
    return BASE + timedelta(days=n)


def _vin(tag: int, n: int) -> str:
    return with_vin_check_digit(f"LSVAU2180N{tag:05d}{n:02d}")


@st.composite
def register_lines(draw: st.DrawFn, vehicles: int) -> list[dict[str, Any]]:
    """0-3 lines per vehicle, at distinct instants, in any order of arrival."""
    lines = []
    for n in range(vehicles):
        for as_of in draw(st.sets(st.sampled_from(DAYS), max_size=3)):
            lines.append(
                {
                    "n": n,
                    "as_of": as_of,
                    "plate": draw(st.sampled_from(PLATES)),
                    "region_code": draw(st.sampled_from(REGIONS)),
                    "status": draw(
                        st.sampled_from(["registered", "registered", "scrapped", "deregistered"])
                    ),
                }
            )
    return draw(st.permutations(lines))


@st.composite
def histories(draw: st.DrawFn, vehicles: int) -> list[dict[str, Any]]:
    """0-2 policies per vehicle (some vehicles beyond the register's), each 1-3 versions:
    endorsements move the period and the plate; a surrender or cancel may be followed by
    a version the insurer wrote before it saw the cancel."""
    events = []
    for n in range(vehicles):
        for index in range(draw(st.integers(0, 2))):
            insurer = draw(st.sampled_from(INSURERS))
            start = draw(st.sampled_from(DAYS[:-1]))
            length = draw(st.sampled_from([365, 200, 10, 1]))
            for version in range(1, draw(st.integers(1, 3)) + 1):
                kind = (
                    "issue"
                    if version == 1
                    else draw(st.sampled_from(["endorse", "endorse", "surrender", "cancel"]))
                )
                end = (
                    start
                    + length
                    + (draw(st.sampled_from([-5, 0, 35])) if kind == "endorse" else 0)
                )
                cut = draw(st.sampled_from(DAYS)) if kind == "surrender" else None
                events.append(
                    {
                        "n": n,
                        "index": index,
                        "insurer": insurer,
                        "version": version,
                        "kind": kind,
                        "start": start,
                        "end": max(end, start + 1),
                        "cut": cut,
                        "plate": draw(st.sampled_from(PLATES)),
                    }
                )
                if kind in ("surrender", "cancel"):
                    if draw(st.booleans()):
                        events.append({**events[-1], "version": version + 1, "kind": "endorse"})
                    break
    return draw(st.permutations(events))


def _feed(container: Container, tag: int, lines: list[dict[str, Any]]) -> None:
    raws = [
        (
            number,
            {
                "vin": _vin(tag, line["n"]),
                "plate": line["plate"],
                "vehicle_type": "passenger_small",
                "region_code": line["region_code"],
                "status": line["status"],
                "as_of": day(line["as_of"]).isoformat(),
            },
        )
        for number, line in enumerate(lines, 1)
    ]
    results = list(container.register_feed.feed(raws))
    assert {r.status for r in results} <= {LineStatus.ACCEPTED}, results


def _ingest(container: Container, tag: int, history: list[dict[str, Any]]) -> None:
    for h in history:
        fields = {"effective_at": day(h["cut"]).isoformat()} if h["kind"] == "surrender" else {}
        raw = event(
            insurer_code=h["insurer"],
            policy_no=f"M{tag}-{h['n']}-{h['index']}",
            event_type=h["kind"],
            version=h["version"],
            vin=_vin(tag, h["n"]),
            plate=h["plate"],
            occurred_at=(day(h["start"]) - timedelta(days=5, hours=h["version"])).isoformat(),
            coverage_start=day(h["start"]).isoformat(),
            coverage_end=day(h["end"]).isoformat(),
            **fields,
        )
        try:
            container.report_events.report(raw, insurer_code=h["insurer"])
        except DomainError as error:  # a version after a stored cancel: refused (§2.4)
            if error.code != "policy_closed":  # pragma: no cover - nothing else may fail
                raise AssertionError(f"event refused: {error.code} {error.message}") from error


def _python(container: Container, at: datetime, prefix: str) -> MatchReport:
    return run_reads(container, lambda: container.enforcement.match_in_python(at, prefix))


@pytest.fixture
def insurers(make_insurer: Callable[[str], InsurerAccount]) -> None:
    for code in INSURERS:
        make_insurer(code)


@pytest.mark.usefixtures("insurers")
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_sql_counts_are_the_python_rules_counts(
    container: Container, data: st.DataObject
) -> None:
    tag = next(_serial)
    _feed(container, tag, data.draw(register_lines(5), "register"))
    _ingest(container, tag, data.draw(histories(7), "events"))  # vehicles 5 and 6: unknown
    sql = SqlMatchCounts(container.engine)
    for at_day in (*DAYS, 50, 1000):
        at = day(at_day)
        prefix = data.draw(st.sampled_from(PREFIXES), "prefix")
        expected = _python(container, at, prefix)
        counted = sql.count(at, prefix)
        assert counted.uninsured_by_region == expected.uninsured_by_region, (at_day, prefix)
        assert counted.unmatched_by_insurer == expected.unmatched_by_insurer, (at_day, prefix)


def _fleet_lines(count: int) -> list[dict[str, Any]]:
    return [
        {
            "vin": with_vin_check_digit(f"LSVAU2180N{n:07d}"),
            "plate": f"苏E{n % 100000:05d}",
            "vehicle_type": "truck",
            "region_code": "320505" if n % 2 else "320506",
            "status": "registered",
            "as_of": BASE.isoformat(),
        }
        for n in range(count)
    ]


def test_the_match_refreshes_stale_statistics_then_counts_in_sql(
    container: Container, make_insurer: Callable[[str], InsurerAccount]
) -> None:
    """``Enforcement.match`` is wired to the SQL counts, which take the statistics a
    load left stale (a new register table here) before they count."""
    make_insurer("PICC")
    statistics = SqlPlannerStatistics(container.engine, REGISTER_TABLES)
    fed = container.register_feed.feed(enumerate(_fleet_lines(10_000), 1))
    assert sum(r.status is LineStatus.ACCEPTED for r in fed) == 10_000
    assert container.register_feed.refresh_statistics(9_999) == []  # not a large feed
    report = run_reads(container, lambda: container.enforcement.match(day(10), "3205"))
    assert report.uninsured_by_region == {"320505": 5_000, "320506": 5_000}
    assert report.unmatched_by_insurer == {"PICC": {"vin_not_registered": 0, "plate_differs": 0}}
    assert statistics.refresh(1) == []  # taken by the match


def test_a_large_feed_leaves_the_registers_statistics_fresh(
    client: TestClient, container: Container
) -> None:
    statistics = SqlPlannerStatistics(container.engine, REGISTER_TABLES)
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in _fleet_lines(10_000))
    fed = client.post(
        "/v1/register/vehicles",
        content=body.encode(),
        headers={
            **bearer_headers(container.users.add("vms", "registrar")),
            "Content-Type": "application/x-ndjson",
        },
    )
    assert fed.status_code == 200 and fed.json()["accepted"] == 10_000, fed.text[:300]
    assert statistics.refresh(1) == []  # the feed took them
