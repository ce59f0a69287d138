"""The early reminder of the riskiest vehicles (issue 12 item 6; domain/reminders.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.reminders import ReminderRules, due_reminder
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
