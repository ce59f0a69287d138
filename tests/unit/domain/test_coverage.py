"""Coverage status (DESIGN §2.5): one test per status, the edges that decide a police
stop (end exclusive, surrender cut, renewal without gap) and the order-independence
properties that let insurers send events in any order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.coverage import (
    CoverageResult,
    CoverageStatus,
    Gap,
    PolicyState,
    coverage_status,
    coverage_summary,
    covered_at,
    ruling_versions,
)
from ctplhub.domain.policy import EventType

BEIJING = timezone(timedelta(hours=8))


def bj(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)


def policy(
    no: str = "P1",
    insurer: str = "PICC",
    start: datetime = bj(2025, 3, 1),
    end: datetime = bj(2026, 3, 1),
    *,
    version: int = 1,
    event: EventType = EventType.ISSUE,
    effective_at: datetime | None = None,
) -> PolicyState:
    return PolicyState(insurer, no, version, event, start, end, effective_at)


# A year of cover written the usual way: 2025-03-01 to 2026-02-28 (二十四时).
YEAR_1 = policy()
YEAR_2 = policy("P2", "CPIC", bj(2026, 3, 1), bj(2027, 3, 1))


# --- the status enumeration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "zh", "covered", "klass"),
    [
        (CoverageStatus.RENEWED, "已续保", True, "COVERED"),
        (CoverageStatus.ACTIVE, "保障中", True, "COVERED"),
        (CoverageStatus.EXPIRING_SOON, "即将到期", True, "COVERED"),
        (CoverageStatus.PENDING_START, "待生效", False, "NOT_COVERED"),
        (CoverageStatus.LAPSED, "已脱保", False, "NOT_COVERED"),
        (CoverageStatus.NO_RECORD, "无记录", False, "NO_RECORD"),
    ],
)
def test_status_texts_and_classes(
    status: CoverageStatus, zh: str, covered: bool, klass: str
) -> None:
    assert (status.text_zh, status.covered, status.status_class) == (zh, covered, klass)
    assert status == status.name


# --- one test per status ----------------------------------------------------------------


def test_renewed_by_another_insurer_with_touching_intervals() -> None:
    result = coverage_status([YEAR_1, YEAR_2], bj(2026, 2, 15))
    assert result.status is CoverageStatus.RENEWED
    assert result.covered_until == bj(2027, 3, 1)
    assert result.current_policy == YEAR_1
    assert result.next_policy == YEAR_2
    assert result.days_to_expiry == 379
    assert result.duplicate_coverage is False  # touching is not overlapping
    assert result.gaps == ()
    assert (result.lapsed_since, result.days_lapsed) == (None, None)


def test_active() -> None:
    result = coverage_status([YEAR_1], bj(2025, 6, 1))
    assert result.status is CoverageStatus.ACTIVE
    assert result.covered_until == bj(2026, 3, 1)
    assert result.current_policy == YEAR_1
    assert result.next_policy is None
    assert result.days_to_expiry == 273
    assert result.gaps == ()


def test_expiring_soon() -> None:
    result = coverage_status([YEAR_1], bj(2026, 2, 15))
    assert result.status is CoverageStatus.EXPIRING_SOON
    assert result.days_to_expiry == 14
    assert result.next_policy is None


def test_pending_start_for_a_new_vehicle() -> None:
    result = coverage_status([YEAR_2], bj(2026, 2, 15))
    assert result.status is CoverageStatus.PENDING_START
    assert result.next_policy == YEAR_2
    assert (result.covered_until, result.current_policy, result.days_to_expiry) == (
        None,
        None,
        None,
    )
    assert (result.lapsed_since, result.days_lapsed) == (None, None)
    assert result.gaps == ()  # a car was not uninsured before its first policy


def test_pending_start_after_a_lapse_reports_the_lapse() -> None:
    old = policy("P0", "PAIC", bj(2024, 3, 1), bj(2025, 3, 1))
    at = bj(2026, 2, 15)
    result = coverage_status([old, YEAR_2], at)
    assert result.status is CoverageStatus.PENDING_START
    assert result.next_policy == YEAR_2
    assert result.lapsed_since == bj(2025, 3, 1)
    assert result.days_lapsed == 351
    assert result.gaps == (Gap(bj(2025, 3, 1), at),)


def test_pending_start_picks_the_earliest_future_policy() -> None:
    later = policy("P3", "PAIC", bj(2026, 4, 1), bj(2027, 4, 1))
    result = coverage_status([later, YEAR_2], bj(2026, 2, 15))
    assert result.next_policy == YEAR_2


def test_lapsed() -> None:
    at = bj(2026, 4, 10)
    result = coverage_status([YEAR_1], at)
    assert result.status is CoverageStatus.LAPSED
    assert result.lapsed_since == bj(2026, 3, 1)
    assert result.days_lapsed == 40
    assert result.gaps == (Gap(bj(2026, 3, 1), at),)
    assert (result.current_policy, result.next_policy, result.covered_until) == (None, None, None)


@pytest.mark.parametrize(
    "policies",
    [
        [],
        [policy(event=EventType.CANCEL)],
        [policy(version=2, event=EventType.SURRENDER, effective_at=bj(2025, 2, 1))],
        [policy(version=2, event=EventType.SURRENDER, effective_at=bj(2025, 3, 1))],
    ],
    ids=["none", "cancelled", "surrendered-before-start", "surrendered-at-start"],
)
def test_no_record(policies: list[PolicyState]) -> None:
    result = coverage_status(policies, bj(2025, 6, 1))
    assert result == CoverageResult(
        bj(2025, 6, 1), CoverageStatus.NO_RECORD, None, None, None, None, None, None, False, ()
    )


# --- interval edges ---------------------------------------------------------------------


def test_start_is_covered_and_end_is_not() -> None:
    at_start = coverage_status([YEAR_1], bj(2025, 3, 1))
    assert at_start.status is CoverageStatus.ACTIVE
    assert at_start.days_to_expiry == 365

    last_instant = coverage_status([YEAR_1], bj(2026, 3, 1) - timedelta(microseconds=1))
    assert last_instant.status is CoverageStatus.EXPIRING_SOON
    assert last_instant.days_to_expiry == 0

    at_end = coverage_status([YEAR_1], bj(2026, 3, 1))
    assert at_end.status is CoverageStatus.LAPSED
    assert at_end.lapsed_since == bj(2026, 3, 1)
    assert at_end.days_lapsed == 0
    assert at_end.gaps == ()  # [end, end) is empty


def test_surrender_cuts_cover_at_effective_at() -> None:
    cut = bj(2025, 9, 1, 12)
    surrendered = policy(version=2, event=EventType.SURRENDER, effective_at=cut)
    assert surrendered.interval == (bj(2025, 3, 1), cut)

    before = coverage_status([YEAR_1, surrendered], cut - timedelta(seconds=1))
    assert before.status is CoverageStatus.EXPIRING_SOON
    assert before.covered_until == cut
    assert before.current_policy == surrendered

    after = coverage_status([YEAR_1, surrendered], cut)
    assert after.status is CoverageStatus.LAPSED
    assert after.lapsed_since == cut


def test_surrender_after_the_end_does_not_extend_cover() -> None:
    late = policy(version=2, event=EventType.SURRENDER, effective_at=bj(2026, 6, 1))
    assert late.interval == (bj(2025, 3, 1), bj(2026, 3, 1))


def test_cancel_contributes_nothing() -> None:
    cancelled = policy(version=2, event=EventType.CANCEL)
    assert cancelled.interval is None
    other = policy("P9", "CPIC", bj(2025, 5, 1), bj(2026, 5, 1))
    result = coverage_status([YEAR_1, cancelled, other], bj(2025, 4, 1))
    assert result.status is CoverageStatus.PENDING_START  # the cancelled year never counted
    assert result.next_policy == other
    assert result.duplicate_coverage is False


# --- versions ---------------------------------------------------------------------------


def test_highest_version_wins_whatever_the_order() -> None:
    endorsed = policy(version=2, event=EventType.ENDORSE, start=bj(2025, 6, 1), end=bj(2026, 6, 1))
    listed = [endorsed, YEAR_1]  # the older version arrives last

    assert ruling_versions(listed) == [endorsed]
    later = coverage_status(listed, bj(2026, 4, 1))
    assert later.status is CoverageStatus.ACTIVE
    assert later.covered_until == bj(2026, 6, 1)
    assert later.current_policy == endorsed
    # Version 1 alone would have covered this instant; the endorsement moved the period.
    assert coverage_status(listed, bj(2025, 4, 1)).status is CoverageStatus.PENDING_START


def test_the_lowest_versioned_cancel_rules_whatever_arrived_first() -> None:
    # Version 3 (an endorse) reached the registry before the cancel at version 2: the
    # cancel still rules, so the endorse cannot outlive it (§2.4).
    endorsed = policy(version=3, event=EventType.ENDORSE, end=bj(2026, 6, 1))
    cancelled = policy(version=2, event=EventType.CANCEL)
    surrendered = policy(version=4, event=EventType.SURRENDER, effective_at=bj(2025, 9, 1))
    for listed in ([endorsed, cancelled, surrendered], [surrendered, cancelled, endorsed]):
        assert ruling_versions(listed) == [cancelled]
        assert coverage_status(listed, bj(2025, 4, 1)).status is CoverageStatus.NO_RECORD
    assert ruling_versions([endorsed, surrendered]) == [surrendered]


def test_ruling_versions_are_sorted_and_deduplicated() -> None:
    a = policy("B", "PICC", bj(2025, 1, 1), bj(2026, 1, 1))
    b = policy("A", "PICC", bj(2025, 1, 1), bj(2026, 1, 1))
    c = policy("Z", "AAIC", bj(2024, 1, 1), bj(2025, 1, 1))
    assert ruling_versions([a, b, c, a, replace(c, version=3), c]) == [
        replace(c, version=3),
        b,
        a,
    ]


# --- renewal, gaps, duplicates ----------------------------------------------------------


def test_gap_between_policies_is_not_a_renewal() -> None:
    after_gap = policy("P2", "CPIC", bj(2026, 3, 10), bj(2027, 3, 10))
    before = coverage_status([YEAR_1, after_gap], bj(2026, 2, 15))
    assert before.status is CoverageStatus.EXPIRING_SOON
    assert before.covered_until == bj(2026, 3, 1)
    assert before.next_policy is None

    later = coverage_status([YEAR_1, after_gap], bj(2026, 6, 1))
    assert later.status is CoverageStatus.ACTIVE
    assert later.gaps == (Gap(bj(2026, 3, 1), bj(2026, 3, 10)),)


def test_renewal_is_the_first_policy_carrying_cover_past_the_current_one() -> None:
    short = policy("P2", "CPIC", bj(2026, 3, 1), bj(2026, 4, 1))
    long = policy("P3", "CPIC", bj(2026, 3, 1), bj(2027, 3, 1))
    chained = policy("P4", "CPIC", bj(2027, 3, 1), bj(2028, 3, 1))
    result = coverage_status([chained, short, YEAR_1, long], bj(2026, 2, 15))
    assert result.status is CoverageStatus.RENEWED
    assert result.covered_until == bj(2028, 3, 1)
    assert result.next_policy == long  # same start as `short`, but reaches further


def test_renewal_across_time_zones_still_touches() -> None:
    renewal_utc = policy("P2", "CPIC", datetime(2026, 2, 28, 16, tzinfo=UTC), bj(2027, 3, 1))
    result = coverage_status([YEAR_1, renewal_utc], bj(2026, 2, 15))
    assert result.status is CoverageStatus.RENEWED
    assert result.duplicate_coverage is False


def test_duplicate_coverage_by_two_insurers() -> None:
    overlapping = policy("P2", "CPIC", bj(2025, 9, 1), bj(2026, 9, 1))
    assert coverage_status([YEAR_1, overlapping], bj(2025, 6, 1)).duplicate_coverage is True
    # The overlap is over by the time asked about: history, not a flag.
    assert coverage_status([YEAR_1, overlapping], bj(2026, 3, 1)).duplicate_coverage is False
    assert coverage_status([YEAR_1, overlapping], bj(2026, 4, 1)).duplicate_coverage is False


def test_overlap_with_the_same_insurer_is_not_duplicate() -> None:
    same_insurer = policy("P2", "PICC", bj(2025, 9, 1), bj(2026, 9, 1))
    assert coverage_status([YEAR_1, same_insurer], bj(2025, 6, 1)).duplicate_coverage is False


def test_several_policies_cover_at_current_is_the_one_ending_last() -> None:
    overlapping = policy("P2", "CPIC", bj(2025, 6, 1), bj(2026, 6, 1))
    result = coverage_status([overlapping, YEAR_1], bj(2025, 7, 1))
    assert result.current_policy == overlapping
    assert result.covered_until == bj(2026, 6, 1)
    assert result.status is CoverageStatus.ACTIVE  # nothing reaches past the current policy
    assert result.next_policy is None
    assert result.duplicate_coverage is True


def test_current_policy_tie_on_end_goes_to_the_later_start() -> None:
    later_start = policy("P2", "CPIC", bj(2025, 6, 1), bj(2026, 3, 1))
    assert coverage_status([later_start, YEAR_1], bj(2025, 7, 1)).current_policy == later_start


def test_gaps_respect_the_lookback_and_the_first_ever_cover() -> None:
    old = policy("P0", "PAIC", bj(2023, 3, 1), bj(2024, 3, 1))
    at = bj(2025, 6, 1)
    # The lapse from 2024-03-01 to 2025-03-01 is clipped to the 365 days before `at`.
    assert coverage_status([old, YEAR_1], at).gaps == (
        Gap(at - timedelta(days=365), bj(2025, 3, 1)),
    )
    wide = coverage_status([old, YEAR_1], at, gap_lookback=timedelta(days=5000))
    assert wide.gaps == (Gap(bj(2024, 3, 1), bj(2025, 3, 1)),)


# --- window, history, arithmetic, input checks ------------------------------------------


def test_reminder_window_boundary() -> None:
    end = bj(2026, 3, 1)
    assert coverage_status([YEAR_1], end - timedelta(days=30)).status is (
        CoverageStatus.EXPIRING_SOON
    )
    assert coverage_status([YEAR_1], end - timedelta(days=30, seconds=1)).status is (
        CoverageStatus.ACTIVE
    )
    narrow = coverage_status([YEAR_1], end - timedelta(days=8), reminder_window=timedelta(days=7))
    assert narrow.status is CoverageStatus.ACTIVE


def test_historic_instant_is_judged_as_of_then() -> None:
    lapsed_then = policy("P3", "PAIC", bj(2027, 6, 1), bj(2028, 6, 1))
    policies = [YEAR_1, YEAR_2, lapsed_then]
    assert coverage_status(policies, bj(2024, 1, 1)).status is CoverageStatus.PENDING_START
    assert coverage_status(policies, bj(2025, 12, 1)).status is CoverageStatus.RENEWED
    then = coverage_status(policies, bj(2027, 4, 1))
    assert then.status is CoverageStatus.PENDING_START
    assert then.lapsed_since == bj(2027, 3, 1)


@pytest.mark.parametrize(
    ("at", "days_to_expiry", "days_lapsed"),
    [
        (bj(2026, 2, 28), 1, None),
        (bj(2026, 2, 27, 23, 59, 59), 1, None),
        (bj(2026, 2, 28, 0, 0, 1), 0, None),
        (bj(2026, 3, 1, 23, 59, 59), None, 0),
        (bj(2026, 3, 2), None, 1),
        (bj(2026, 3, 3, 12), None, 2),
    ],
)
def test_days_are_floored(
    at: datetime, days_to_expiry: int | None, days_lapsed: int | None
) -> None:
    result = coverage_status([YEAR_1], at)
    assert (result.days_to_expiry, result.days_lapsed) == (days_to_expiry, days_lapsed)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        coverage_status([YEAR_1], datetime(2025, 6, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        policy(start=datetime(2025, 3, 1))


# --- properties -------------------------------------------------------------------------

_BASE = bj(2025, 1, 1)


@st.composite
def policy_states(draw: st.DrawFn) -> PolicyState:
    start = _BASE + timedelta(hours=draw(st.integers(0, 24 * 90)))
    end = start + timedelta(hours=draw(st.integers(1, 24 * 60)))
    event = draw(st.sampled_from(EventType))
    cut = None
    if event is EventType.SURRENDER:
        cut = start + timedelta(hours=draw(st.integers(-24 * 5, 24 * 65)))
    return PolicyState(
        draw(st.sampled_from(["PICC", "CPIC", "PAIC"])),
        draw(st.sampled_from(["A", "B", "C"])),
        draw(st.integers(1, 4)),
        event,
        start,
        end,
        cut,
    )


policy_lists = st.lists(policy_states(), max_size=8)
instants = st.integers(-24 * 5, 24 * 160).map(lambda h: _BASE + timedelta(hours=h))


@given(policy_lists.flatmap(lambda ps: st.tuples(st.just(ps), st.permutations(ps))), instants)
def test_order_of_policies_does_not_matter(
    pair: tuple[list[PolicyState], list[PolicyState]], at: datetime
) -> None:
    original, shuffled = pair
    assert coverage_status(shuffled, at) == coverage_status(original, at)


@given(policy_lists, instants)
def test_covered_means_covered_until_ahead_and_a_current_policy(
    policies: list[PolicyState], at: datetime
) -> None:
    result = coverage_status(policies, at)
    intervals = [p.interval for p in ruling_versions(policies) if p.interval is not None]
    assert result.status.covered == any(s <= at < e for s, e in intervals)
    assert covered_at(policies, at) == result.status.covered  # the daily match's shortcut
    if result.status.covered:
        assert result.covered_until is not None and result.covered_until > at
        assert result.current_policy is not None
    assert all(gap.start < gap.end <= at for gap in result.gaps)


@given(policy_lists, instants, st.sampled_from([timedelta(days=30), timedelta(days=3)]))
def test_the_summary_is_the_status_cut_short(
    policies: list[PolicyState], at: datetime, window: timedelta
) -> None:
    """Bulk verify's shortcut: the same status, cover end, current policy and lapse."""
    result = coverage_status(policies, at, reminder_window=window)
    summary = coverage_summary(policies, at, reminder_window=window)
    assert (summary.status, summary.covered_until, summary.current_policy) == (
        result.status,
        result.covered_until,
        result.current_policy,
    )
    assert summary.lapsed_since == result.lapsed_since
    # A store hands in a tuple, which takes the one-policy shortcut of ``_ruling``.
    assert coverage_summary(tuple(policies), at, reminder_window=window) == summary


@given(st.data(), policy_lists, instants)
def test_resending_policies_changes_nothing(
    data: st.DataObject, policies: list[PolicyState], at: datetime
) -> None:
    resent = data.draw(st.lists(st.sampled_from(policies))) if policies else []
    assert coverage_status(policies + resent, at) == coverage_status(policies, at)


@given(st.data(), policy_lists.filter(bool), instants)
def test_a_lower_version_changes_nothing(
    data: st.DataObject, policies: list[PolicyState], at: datetime
) -> None:
    bumped = [replace(p, version=p.version + 1) for p in policies]
    target = data.draw(st.sampled_from(bumped))
    # A lower version is history, unless it is a surrender or cancel (those rule, §2.4).
    older = replace(data.draw(policy_states()), version=1, effective_at=None)
    kind = data.draw(st.sampled_from([EventType.ISSUE, EventType.RENEW, EventType.ENDORSE]))
    older = replace(
        older, event_type=kind, insurer_code=target.insurer_code, policy_no=target.policy_no
    )
    assert coverage_status([*bumped, older], at) == coverage_status(bumped, at)


@given(st.data(), policy_lists, instants)
def test_cover_holds_until_covered_until(
    data: st.DataObject, policies: list[PolicyState], at: datetime
) -> None:
    result = coverage_status(policies, at)
    if not result.status.covered:
        return
    assert result.covered_until is not None
    span = (result.covered_until - at) // timedelta(microseconds=1)
    later = at + timedelta(microseconds=data.draw(st.integers(0, span - 1)))
    again = coverage_status(policies, later)
    assert again.status.covered
    assert again.covered_until == result.covered_until
