"""Plate resolution (§2.5) and freshness caveats (§2.6): pure functions, no database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.freshness import Freshness, InsurerInfo
from ctplhub.domain.vehicle import PlateClaim, VehicleHistory, VehicleSnapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def claim(vin: str, plate: str, days: float, seq: int) -> PlateClaim:
    return PlateClaim(vin, plate, T0 + timedelta(days=days), seq)


def snapshot(claims: Iterable[PlateClaim]) -> VehicleSnapshot:
    by_vin: dict[str, list[PlateClaim]] = {}
    for c in claims:
        by_vin.setdefault(c.vin, []).append(c)
    return VehicleSnapshot(VehicleHistory(vin, tuple(cs), (), None) for vin, cs in by_vin.items())


def vin_at(claims: list[PlateClaim], plate: str, days: float) -> str | None:
    found = snapshot(claims).at_plate(plate, T0 + timedelta(days=days))
    return found.vin if found else None


def test_current_plate_is_the_most_recent_event_ties_broken_by_arrival() -> None:
    claims = [
        claim("A", "苏E12345", 0, 1),
        claim("A", "苏E77777", 5, 2),
        claim("A", "苏E88888", 5, 3),
    ]
    assert vin_at(claims, "苏E88888", 9) == "A"
    assert vin_at(claims, "苏E77777", 9) is None  # same instant, received earlier
    assert vin_at(claims, "苏E12345", 3) == "A"


def test_plate_resolves_to_the_vehicle_that_holds_it_at_the_instant() -> None:
    claims = [
        claim("A", "苏E12345", 0, 1),
        claim("A", "苏E77777", 10, 2),
        claim("B", "苏E12345", 20, 3),
    ]
    assert vin_at(claims, "苏E12345", 30) == "B"
    assert vin_at(claims, "苏E12345", 5) == "A"
    assert vin_at(claims, "苏E77777", 30) == "A"
    assert vin_at(claims, "苏E00000", 30) is None


def test_two_current_claims_go_to_the_more_recent_one() -> None:
    claims = [claim("A", "苏E12345", 3, 9), claim("B", "苏E12345", 7, 1)]
    assert vin_at(claims, "苏E12345", 10) == "B"


def test_before_the_first_event_the_vehicle_whose_first_event_carries_the_plate_stands() -> None:
    # An insurer loads its book today (day 100): a check of last year's accident (day 0)
    # must still find the car.
    claims = [claim("A", "苏E12345", 100, 1)]
    assert vin_at(claims, "苏E12345", 0) == "A"
    assert vin_at(claims, "苏E12345", 100) == "A"


def test_a_plate_moved_away_and_later_given_to_another_car() -> None:
    # A carried the plate from day 0, was re-plated on day 50; B got the plate on day 200.
    claims = [
        claim("A", "苏E12345", 0, 1),
        claim("A", "苏E77777", 50, 2),
        claim("B", "苏E12345", 200, 3),
    ]
    assert vin_at(claims, "苏E12345", -30) == "A"  # before anything: A's first event
    assert vin_at(claims, "苏E12345", 10) == "A"
    assert vin_at(claims, "苏E12345", 100) is None  # in use before, on no car now
    assert vin_at(claims, "苏E12345", 250) == "B"
    assert vin_at(claims, "苏E77777", 10) is None  # claimed by no one yet, and A's first
    assert vin_at(claims, "苏E77777", 60) == "A"  # event carried another plate


def test_two_vehicles_whose_first_events_carry_the_same_plate() -> None:
    # Both first reported with the plate (one of the insurers is wrong); before either
    # event, the earlier event stands, ties by arrival.
    claims = [claim("A", "苏E12345", 40, 7), claim("B", "苏E12345", 30, 9)]
    assert vin_at(claims, "苏E12345", 0) == "B"
    tie = [claim("A", "苏E12345", 30, 7), claim("B", "苏E12345", 30, 9)]
    assert vin_at(tie, "苏E12345", 0) == "A"
    assert vin_at(tie, "苏E12345", 31) == "B"  # at the instant, the later arrival wins


# --- the rule against a slow model ------------------------------------------------------

PLATES = ["苏E12345", "苏E54321", "京A00001"]


def model(claims: list[PlateClaim], plate: str, at: datetime) -> str | None:
    """DESIGN §2.5 read word by word, over the flat list of every event."""

    def order(c: PlateClaim) -> tuple[datetime, int]:
        return (c.occurred_at, c.seq)

    vins = sorted({c.vin for c in claims})
    holders = []
    for vin in vins:
        up_to = [c for c in claims if c.vin == vin and c.occurred_at <= at]
        if up_to and max(up_to, key=order).plate == plate:
            holders.append(max(up_to, key=order))
    if holders:
        return max(holders, key=order).vin
    if any(c.plate == plate and c.occurred_at <= at for c in claims):
        return None
    firsts = [min((c for c in claims if c.vin == vin), key=order) for vin in vins]
    carrying = [c for c in firsts if c.plate == plate]
    return min(carrying, key=order).vin if carrying else None


event_lists = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C", "D"]),
        st.sampled_from(PLATES),
        st.integers(0, 30),
    ),
    max_size=12,
).map(lambda rows: [claim(v, p, d, seq) for seq, (v, p, d) in enumerate(rows, start=1)])


@settings(max_examples=400)
@given(event_lists, st.sampled_from([*PLATES, "沪B99999"]), st.integers(-2, 32))
def test_resolution_matches_the_model(claims: list[PlateClaim], plate: str, day: int) -> None:
    at = T0 + timedelta(days=day)
    assert vin_at(claims, plate, day) == model(claims, plate, at)


@settings(max_examples=200)
@given(event_lists, st.sampled_from(PLATES), st.integers(-2, 32), st.randoms())
def test_resolution_ignores_other_vehicles_and_arrival_order_within_the_list(
    claims: list[PlateClaim], plate: str, day: int, random: object
) -> None:
    """A snapshot read for several plates (a batch) answers one plate as one read for it."""
    mine = {c.vin for c in claims if c.plate == plate}
    alone = [c for c in claims if c.vin in mine]
    shuffled = list(claims)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert vin_at(shuffled, plate, day) == vin_at(alone, plate, day)


# --- freshness -------------------------------------------------------------------------


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
    freshness = Freshness(insurers, T0, DAY)
    sources = freshness.sources({"PICC"})
    caveats = freshness.caveats({"PICC"}, CoverageStatus.LAPSED)
    assert [s.insurer_code for s in sources] == ["CCIC", "CPIC", "PICC"]
    assert [s.stale for s in sources] == [True, True, False]
    assert [(c.code, c.insurer_code) for c in caveats] == [
        ("stale_insurer", "CCIC"),
        ("stale_insurer", "CPIC"),
    ]


def test_good_news_needs_no_stale_caveat() -> None:
    freshness = Freshness(
        {"PICC": info("PICC"), "CPIC": info("CPIC", synced_hours_ago=30)}, T0, DAY
    )
    for status in (CoverageStatus.ACTIVE, CoverageStatus.RENEWED, CoverageStatus.PENDING_START):
        assert freshness.caveats({"PICC"}, status) == ()
    for status in (CoverageStatus.EXPIRING_SOON, CoverageStatus.NO_RECORD):
        assert [c.insurer_code for c in freshness.caveats({"PICC"}, status)] == ["CPIC"]


def test_answers_built_on_a_revoked_insurer_say_so() -> None:
    freshness = Freshness({"PICC": info("PICC", status="revoked")}, T0, DAY)
    caveats = freshness.caveats({"PICC"}, CoverageStatus.ACTIVE)
    assert [c.code for c in caveats] == ["insurer_revoked"]


def test_an_insurer_gone_from_the_table_is_a_stale_source() -> None:
    freshness = Freshness({}, T0, DAY)
    assert [(s.insurer_code, s.last_sync_at, s.stale) for s in freshness.sources({"GONE"})] == [
        ("GONE", None, True)
    ]
