"""Plate resolution (§2.5) and freshness caveats (§2.6): pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.freshness import InsurerInfo, sources_and_caveats
from ctplhub.domain.vehicle import PlateClaim, latest_claims, resolve_plate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def claim(vin: str, plate: str, days: int, seq: int) -> PlateClaim:
    return PlateClaim(vin, plate, T0 + timedelta(days=days), seq)


def test_current_plate_is_the_most_recent_event_ties_broken_by_arrival() -> None:
    latest = latest_claims(
        [claim("A", "苏E12345", 0, 1), claim("A", "苏E77777", 5, 2), claim("A", "苏E88888", 5, 3)]
    )
    assert latest["A"].plate == "苏E88888"


def test_plate_resolves_to_the_vehicle_that_holds_it_now() -> None:
    latest = latest_claims(
        [claim("A", "苏E12345", 0, 1), claim("A", "苏E77777", 10, 2), claim("B", "苏E12345", 20, 3)]
    )
    assert resolve_plate("苏E12345", latest) == "B"
    assert resolve_plate("苏E77777", latest) == "A"
    assert resolve_plate("苏E00000", latest) is None


def test_two_current_claims_go_to_the_more_recent_one() -> None:
    latest = latest_claims([claim("A", "苏E12345", 3, 9), claim("B", "苏E12345", 7, 1)])
    assert resolve_plate("苏E12345", latest) == "B"


def info(code: str, status: str = "certified", synced_hours_ago: float | None = 1) -> InsurerInfo:
    last = None if synced_hours_ago is None else T0 - timedelta(hours=synced_hours_ago)
    return InsurerInfo(code, code, status, last)


DAY = timedelta(hours=24)


def test_bad_news_carries_a_caveat_for_each_stale_certified_insurer() -> None:
    insurers = {
        "PICC": info("PICC"),
        "CPIC": info("CPIC", synced_hours_ago=30),
        "CCIC": info("CCIC", synced_hours_ago=None),
        "OLD": info("OLD", status="revoked", synced_hours_ago=500),
    }
    sources, caveats = sources_and_caveats(insurers, {"PICC"}, CoverageStatus.LAPSED, T0, DAY)
    assert [s["insurer_code"] for s in sources] == ["CCIC", "CPIC", "PICC"]
    assert [s["stale"] for s in sources] == [True, True, False]
    assert [(c["code"], c["insurer_code"]) for c in caveats] == [
        ("stale_insurer", "CCIC"),
        ("stale_insurer", "CPIC"),
    ]


def test_good_news_needs_no_stale_caveat() -> None:
    insurers = {"PICC": info("PICC"), "CPIC": info("CPIC", synced_hours_ago=30)}
    for status in (CoverageStatus.ACTIVE, CoverageStatus.RENEWED, CoverageStatus.PENDING_START):
        _, caveats = sources_and_caveats(insurers, {"PICC"}, status, T0, DAY)
        assert caveats == []
    for status in (CoverageStatus.EXPIRING_SOON, CoverageStatus.NO_RECORD):
        _, caveats = sources_and_caveats(insurers, {"PICC"}, status, T0, DAY)
        assert [c["insurer_code"] for c in caveats] == ["CPIC"]


def test_answers_built_on_a_revoked_insurer_say_so() -> None:
    insurers = {"PICC": info("PICC", status="revoked")}
    _, caveats = sources_and_caveats(insurers, {"PICC"}, CoverageStatus.ACTIVE, T0, DAY)
    assert [c["code"] for c in caveats] == ["insurer_revoked"]
