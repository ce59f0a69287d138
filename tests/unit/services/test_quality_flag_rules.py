"""The pure rules of data-quality flags (services/quality_flags.py)."""

from __future__ import annotations

from decimal import Decimal

from ctplhub.domain.policy import parse_event
from ctplhub.services.quality_flags import period_flag, premium_flag
from helpers import event


def test_a_year_even_across_29_february_and_starting_at_issue_is_not_too_long() -> None:
    assert period_flag(parse_event(event())) is None  # 365 days
    leap = event(
        coverage_start="2024-02-01T10:30:00+08:00", coverage_end="2025-02-02T00:00:00+08:00"
    )
    assert period_flag(parse_event(leap)) is None  # 366.6 days
    long = event(coverage_end="2026-03-04T00:00:00+08:00")  # 368 days
    message = period_flag(parse_event(long))
    assert message is not None and "368.0 days" in message


def test_premium_bounds_are_inclusive_and_need_a_norm() -> None:
    median = Decimal("950.00")
    norm = (median, median * Decimal("0.2"), median * Decimal("5"))
    assert premium_flag(parse_event(event(premium="4750.00")), norm) is None
    assert premium_flag(parse_event(event(premium="190.00")), norm) is None
    assert premium_flag(parse_event(event(premium="4750.01")), norm) is not None
    assert premium_flag(parse_event(event(premium="189.99")), norm) is not None
    assert premium_flag(parse_event(event(premium="99999.00")), None) is None
