"""Dispute statuses and their moves (DESIGN §10; ``domain/disputes.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctplhub.domain import disputes as d
from ctplhub.domain.errors import DisputeClosed, ValidationFailed

DUE = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)


def test_open_and_escalated_disputes_can_be_resolved_a_resolved_one_cannot() -> None:
    d.check_resolvable(d.OPEN)
    d.check_resolvable(d.ESCALATED)
    with pytest.raises(DisputeClosed) as raised:
        d.check_resolvable(d.RESOLVED)
    assert raised.value.code == "dispute_closed"


def test_only_an_open_dispute_past_its_due_time_is_overdue() -> None:
    assert d.is_overdue(d.OPEN, DUE, DUE)  # due at that instant: escalated then
    assert not d.is_overdue(d.OPEN, DUE, DUE - timedelta(microseconds=1))
    assert not d.is_overdue(d.ESCALATED, DUE, DUE + timedelta(days=9))
    assert not d.is_overdue(d.RESOLVED, DUE, DUE + timedelta(days=9))


@pytest.mark.parametrize("kind", ["renewal_missing", "wrong_data", "other"])
def test_the_three_kinds(kind: str) -> None:
    assert d.checked_kind(kind) == kind


@pytest.mark.parametrize("raw", [None, "", "RENEWAL_MISSING", 3, "fraud"])
def test_another_kind_is_refused(raw: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        d.checked_kind(raw)
    assert raised.value.code == "validation_failed"


def test_outcomes_and_statuses() -> None:
    assert d.checked_outcome("corrected") == "corrected"
    assert d.checked_outcome("rejected") == "rejected"
    with pytest.raises(ValidationFailed):
        d.checked_outcome("accepted")
    assert d.checked_status("escalated") == "escalated"
    with pytest.raises(ValidationFailed):
        d.checked_status("closed")


def test_texts_are_stripped_bounded_and_required_where_asked() -> None:
    assert d.checked_text("  已续保  ", "message", required=True) == "已续保"
    assert d.checked_text(None, "note", required=False) == ""
    for bad in ("   ", None, 5, "x" * (d.MAX_TEXT + 1)):
        with pytest.raises(ValidationFailed):
            d.checked_text(bad, "message", required=True)
    assert len(d.checked_text("x" * d.MAX_TEXT, "message", required=True)) == d.MAX_TEXT


def test_a_resolution_note_names_its_outcome_first() -> None:
    assert d.resolution_note("corrected", "已补报") == "corrected: 已补报"
    assert d.resolution_note("rejected", "") == "rejected"
