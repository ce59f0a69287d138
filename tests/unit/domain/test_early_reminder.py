"""The early reminder of the riskiest vehicles (issue 12 item 6; domain/reminders.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.reminders import ReminderRules, as_ordinary, due_reminder
from ctplhub.notify.content import family_of

BEIJING = timezone(timedelta(hours=8))
START = datetime(2025, 3, 1, tzinfo=BEIJING)
END = datetime(2026, 3, 1, tzinfo=BEIJING)
YEAR = PolicyState("PICC", "P1", 1, EventType.ISSUE, START, END, None)
RULES = ReminderRules()


def test_only_a_high_risk_vehicle_is_reminded_45_days_ahead() -> None:
    at = END - timedelta(days=40)
    assert due_reminder([YEAR], at, RULES) is None
    due = due_reminder([YEAR], at, RULES, high_risk=True)
    assert due is not None and due.rule.kind == "early_risk_45d"
    assert due.due_at == END - timedelta(days=45)


def test_the_early_rule_is_overtaken_by_the_ordinary_ones() -> None:
    due = due_reminder([YEAR], END - timedelta(days=20), RULES, high_risk=True)
    assert due is not None and due.rule.kind == "before_30d"
    assert [r.kind for r in due.older] == ["early_risk_45d"]
    same_day = ReminderRules(early_risk_days=30)
    tie = due_reminder([YEAR], END - timedelta(days=29), same_day, high_risk=True)
    assert tie is not None and tie.rule.kind == "before_30d"


def test_nothing_early_once_renewed_and_the_window_is_configurable() -> None:
    renewal = PolicyState("PICC", "P2", 1, EventType.RENEW, END, END + timedelta(days=365), None)
    assert due_reminder([YEAR, renewal], END - timedelta(days=40), RULES, high_risk=True) is None
    rules = ReminderRules(early_risk_days=60)
    assert rules.look_ahead_early == timedelta(days=60)
    assert rules.look_ahead == timedelta(days=30)
    due = due_reminder([YEAR], END - timedelta(days=59), rules, high_risk=True)
    assert due is not None and due.rule.kind == "early_risk_60d"


def test_the_early_reminder_words_like_a_before_reminder() -> None:
    assert family_of("early_risk_45d") == ("before", 45)


_EVENTS = st.sampled_from([EventType.ISSUE, EventType.RENEW, EventType.SURRENDER, EventType.CANCEL])


@st.composite
def histories(draw: st.DrawFn) -> list[PolicyState]:
    """A few policies of one vehicle around END: any starts, lengths, surrenders, cancels."""
    states = []
    for n in range(draw(st.integers(1, 3))):
        start = END + timedelta(days=draw(st.integers(-500, 60)))
        end = start + timedelta(days=draw(st.integers(1, 400)))
        kind = draw(_EVENTS)
        cut = None
        if kind is EventType.SURRENDER:
            cut = start + timedelta(days=draw(st.integers(0, 400)))
        states.append(PolicyState("PICC", f"P{n}", 1, kind, start, end, cut))
    return states


@given(
    histories(),
    st.integers(-120, 40),
    st.sampled_from([15, 30, 45, 90]),
    st.sampled_from([(30, 7, 1), (60, 3), (10,)]),
)
def test_an_ordinary_vehicles_reminder_follows_from_its_risky_one(
    policies: list[PolicyState], day: int, early_days: int, before_days: tuple[int, ...]
) -> None:
    # The pass asks once, as for a risky vehicle, and derives the ordinary answer.
    rules = ReminderRules(days_before=before_days, early_risk_days=early_days)
    at = END + timedelta(days=day, hours=5)
    risky = due_reminder(policies, at, rules, high_risk=True)
    assert as_ordinary(risky, rules) == due_reminder(policies, at, rules)
