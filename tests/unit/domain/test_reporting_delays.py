"""Months in Beijing time and nearest-rank percentiles (DESIGN §10, late reports)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.reporting_delays import Month, delay_stats, nearest_rank


def test_a_month_is_half_open_in_beijing_time() -> None:
    november = Month.parse("2026-11")

    assert november.start == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert november.end == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert Month.parse("2026-12").end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert Month.of(datetime(2026, 10, 31, 16, tzinfo=UTC)) == november
    assert Month.of(datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC)) == Month(2026, 10)
    assert str(november) == "2026-11"


@pytest.mark.parametrize("raw", ["2026-13", "2026-00", "2026-1", "1999-12", "2100-01", "", None])
def test_a_bad_month_is_refused(raw: object) -> None:
    with pytest.raises(ValidationFailed):
        Month.parse(raw)


def test_nearest_rank_by_the_book() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]  # the textbook example

    assert nearest_rank(values, 5) == 15
    assert nearest_rank(values, 30) == 20
    assert nearest_rank(values, 40) == 20
    assert nearest_rank(values, 50) == 35
    assert nearest_rank(values, 100) == 50
    assert nearest_rank([], 50) is None


@given(st.lists(st.floats(-1e6, 1e7), min_size=1), st.floats(0.01, 100))
def test_nearest_rank_is_a_value_with_at_least_p_percent_at_or_below(
    values: list[float], p: float
) -> None:
    ordered = sorted(values)
    found = nearest_rank(ordered, p)
    assert found in ordered
    at_or_below = sum(1 for v in ordered if v <= found)
    assert at_or_below >= math.ceil(p / 100 * len(ordered)) - 1e-9


def test_late_means_more_than_the_limit_and_empty_is_zero() -> None:
    stats = delay_stats([86_401.0, 10.0, 86_400.0, 5.0], 86_400)

    assert (stats.events, stats.late, stats.late_share) == (4, 1, 0.25)
    assert (stats.median_delay_s, stats.p95_delay_s) == (10.0, 86_401.0)
    empty = delay_stats([], 86_400)
    assert (empty.events, empty.late, empty.late_share) == (0, 0, 0.0)
    assert (empty.median_delay_s, empty.p95_delay_s) == (None, None)
