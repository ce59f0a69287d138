"""Reminder rules (DESIGN §7): which rule is due, nothing once renewed, the most urgent
only, quiet hours that defer and never drop, ghost cover."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.reminders import (
    ReminderRules,
    due_reminder,
    in_quiet_hours,
    is_ghost_cover,
    next_send_instant,
    renewed_after,
)

BEIJING = timezone(timedelta(hours=8))
RULES = ReminderRules()


def bj(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


def policy(
    no: str = "P1",
    start: datetime = bj(2025, 3, 1),
    end: datetime = bj(2026, 3, 1),
    *,
    event: EventType = EventType.ISSUE,
    effective_at: datetime | None = None,
    insurer: str = "PICC",
) -> PolicyState:
    return PolicyState(insurer, no, 1, event, start, end, effective_at)


YEAR_1 = policy()
END = bj(2026, 3, 1)


def kind_at(at: datetime, *policies: PolicyState) -> str | None:
    due = due_reminder(policies or (YEAR_1,), at, RULES)
    return due.rule.kind if due else None


@pytest.mark.parametrize(
    ("at", "kind"),
    [
        (END - timedelta(days=31), None),
        (END - timedelta(days=30), "before_30d"),
        (END - timedelta(days=8), "before_30d"),
        (END - timedelta(days=7), "before_7d"),
        (END - timedelta(days=1), "before_1d"),
        (END - timedelta(seconds=1), "before_1d"),
        (END, None),  # lapsed, but the lapse rule is not due yet
        (END + timedelta(days=1), "lapsed_1d"),
        (END + timedelta(days=8) - timedelta(seconds=1), "lapsed_1d"),
        (END + timedelta(days=8), None),  # past the grace: not "lapsed yesterday"
    ],
)
def test_the_rule_due_at_each_instant(at: datetime, kind: str | None) -> None:
    assert kind_at(at) == kind


def test_the_most_urgent_rule_is_sent_and_the_older_ones_are_skipped() -> None:
    due = due_reminder([YEAR_1], END - timedelta(hours=12), RULES)
    assert due is not None
    assert due.rule.kind == "before_1d"
    assert {r.kind for r in due.older} == {"before_30d", "before_7d"}
    assert due.reference == END and due.policy == YEAR_1
    assert due.due_at == END - timedelta(days=1)


def test_nothing_once_renewed_with_or_without_a_gap() -> None:
    at = END - timedelta(days=3)
    assert kind_at(at, YEAR_1, policy("P2", END, bj(2027, 3, 1))) is None
    assert kind_at(at, YEAR_1, policy("P2", END + timedelta(days=5), bj(2027, 3, 1))) is None
    # lapsed, with a policy yet to start: renewed late, nothing
    later = policy("P2", END + timedelta(days=5), bj(2027, 3, 1))
    assert kind_at(END + timedelta(days=2), YEAR_1, later) is None


def test_a_renewal_that_ended_before_does_not_count() -> None:
    old = policy("P0", bj(2024, 3, 1), bj(2025, 3, 1))
    assert kind_at(END - timedelta(days=7), old, YEAR_1) == "before_7d"


def test_a_block_of_touching_policies_is_reminded_at_its_end() -> None:
    second = policy("P2", END, bj(2027, 3, 1), insurer="CPIC")
    due = due_reminder([YEAR_1, second], bj(2027, 2, 20), RULES)
    assert due is not None and due.reference == bj(2027, 3, 1) and due.policy == second


def test_a_surrender_cuts_the_end_and_a_cancel_gives_nothing() -> None:
    cut = bj(2025, 9, 1)
    surrendered = policy(event=EventType.SURRENDER, effective_at=cut)
    assert kind_at(cut + timedelta(days=1), surrendered) == "lapsed_1d"
    assert kind_at(END - timedelta(days=7), policy(event=EventType.CANCEL)) is None


def test_configurable_days() -> None:
    rules = ReminderRules(days_before=(14,), days_after_lapse=(3,))
    assert [r.kind for r in rules.rules] == ["before_14d", "lapsed_3d"]
    due = due_reminder([YEAR_1], END - timedelta(days=14), rules)
    assert due is not None and due.rule.kind == "before_14d"
    assert due_reminder([YEAR_1], END - timedelta(days=20), rules) is None
    with pytest.raises(ValueError):
        ReminderRules(days_before=(0,))


def test_renewed_after() -> None:
    assert not renewed_after([YEAR_1], END)
    assert renewed_after([YEAR_1, policy("P2", END, bj(2027, 3, 1))], END)
    assert not renewed_after(
        [YEAR_1, policy("P2", END, bj(2027, 3, 1), event=EventType.CANCEL)], END
    )


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (bj(2026, 2, 1, 20, 59), False),
        (bj(2026, 2, 1, 21, 0), True),
        (bj(2026, 2, 1, 23, 59), True),
        (bj(2026, 2, 2, 0, 0), True),
        (bj(2026, 2, 2, 7, 59), True),
        (bj(2026, 2, 2, 8, 0), False),
    ],
)
def test_quiet_hours_are_21_to_8_beijing(local: datetime, quiet: bool) -> None:
    assert in_quiet_hours(local) is quiet
    assert in_quiet_hours(local.astimezone(UTC)) is quiet


def test_next_send_instant() -> None:
    assert next_send_instant(bj(2026, 2, 1, 12)) == bj(2026, 2, 1, 12)
    assert next_send_instant(bj(2026, 2, 1, 21)) == bj(2026, 2, 2, 8)
    assert next_send_instant(bj(2026, 2, 2, 3, 30)) == bj(2026, 2, 2, 8)


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 1, 1)))
def test_quiet_hours_defer_never_drop(naive: datetime) -> None:
    """The next send instant is never earlier, never quiet, and at most 11 hours away."""
    at = naive.replace(tzinfo=UTC)
    send = next_send_instant(at)
    assert send >= at
    assert not in_quiet_hours(send)
    assert send - at <= timedelta(hours=11)
    assert (send == at) is (not in_quiet_hours(at))


@given(
    st.integers(min_value=-40 * 24, max_value=10 * 24),
    st.permutations(["P0", "P1", "P2"]),
)
def test_at_most_one_rule_due_and_it_is_the_latest_due(hours: int, order: list[str]) -> None:
    """Whatever the instant and the order the policies come in, the decision is the same,
    the rule sent is due by ``at``, and every older rule due is listed to skip."""
    states = {
        "P0": policy("P0", bj(2024, 3, 1), bj(2025, 3, 1)),
        "P1": YEAR_1,
        "P2": policy("P2", bj(2026, 3, 5), bj(2027, 3, 5), event=EventType.CANCEL),
    }
    at = END + timedelta(hours=hours)
    due = due_reminder([states[n] for n in order], at, RULES)
    again = due_reminder(list(states.values()), at, RULES)
    assert due == again
    if due is not None:
        assert due.due_at <= at
        assert all(due.reference + r.offset <= due.due_at for r in due.older)


def test_quiet_window_not_over_midnight() -> None:
    rules = ReminderRules(quiet_from=time(12, 0), quiet_until=time(13, 0))
    assert in_quiet_hours(bj(2026, 2, 1, 12, 30), rules)
    assert next_send_instant(bj(2026, 2, 1, 12, 30), rules) == bj(2026, 2, 1, 13)


def test_ghost_cover_is_a_close_within_30_days_of_issue() -> None:
    issued = bj(2026, 1, 1)
    assert is_ghost_cover(issued, issued + timedelta(days=30))
    assert not is_ghost_cover(issued, issued + timedelta(days=30, seconds=1))
    assert not is_ghost_cover(issued, issued - timedelta(days=1))
