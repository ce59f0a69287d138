"""The statistics' per-vehicle rules (DESIGN §11): outcomes at each end instant, the
last cover, days lapsed and the weighted median."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.renewal_stats import (
    Outcome,
    PolicyCover,
    beijing_day,
    days_lapsed,
    last_cover,
    policy_outcomes,
    weighted_median,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def cover(no: str, start_days: int, end_days: int, insurer: str = "PICC") -> PolicyCover:
    return PolicyCover(
        insurer, no, "320500", T0 + timedelta(days=start_days), T0 + timedelta(days=end_days)
    )


def outcomes(*covers: PolicyCover) -> dict[str, Outcome]:
    return {o.policy_no: o.outcome for o in policy_outcomes(covers)}


def test_a_policy_starting_exactly_at_the_end_instant_is_a_renewal_on_time() -> None:
    assert outcomes(cover("A", 0, 365), cover("B", 365, 730, "CPIC")) == {
        "A": Outcome.ON_TIME,
        "B": Outcome.UNRENEWED,
    }


def test_a_gap_before_the_next_policy_is_a_late_renewal() -> None:
    assert outcomes(cover("A", 0, 365), cover("B", 366, 731))["A"] is Outcome.LATE


def test_an_overlapping_next_policy_renews_on_time_and_one_alone_is_unrenewed() -> None:
    assert outcomes(cover("A", 0, 365), cover("B", 300, 665))["A"] is Outcome.ON_TIME
    assert outcomes(cover("A", 0, 365)) == {"A": Outcome.UNRENEWED}


def test_the_last_cover_is_the_latest_end_whatever_the_order() -> None:
    covers = [cover("A", 0, 365), cover("B", 100, 400, "CPIC"), cover("C", 10, 400)]
    assert last_cover(covers) == last_cover(covers[::-1])
    found = last_cover(covers)
    assert found is not None and (found.insurer_code, found.end) == ("CPIC", T0 + timedelta(400))
    assert last_cover([]) is None


def test_days_are_beijing_days_and_days_lapsed_are_whole_days() -> None:
    assert beijing_day(datetime(2026, 2, 28, 16, tzinfo=UTC)).isoformat() == "2026-03-01"
    assert days_lapsed(T0, T0 + timedelta(days=3, hours=23)) == 3


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5)), max_size=30))
def test_the_weighted_median_is_the_median_of_the_values_repeated(
    counts: list[tuple[int, int]],
) -> None:
    values = [v for v, n in counts for _ in range(n)]
    expected = statistics.median(values) if values else None
    assert weighted_median(counts) == expected


@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 400)), min_size=1, max_size=6),
    st.randoms(),
)
def test_outcomes_do_not_depend_on_the_order_of_the_policies(
    spans: list[tuple[int, int]], rng: random.Random
) -> None:
    covers = [cover(f"P{i}", s, s + length) for i, (s, length) in enumerate(spans)]
    shuffled = covers[:]
    rng.shuffle(shuffled)
    assert outcomes(*covers) == outcomes(*shuffled)
