"""Disputes an owner files about a vehicle's data (DESIGN §10): what they are and how
their status moves.

A dispute is ``open`` when filed; the insurer answers it (``resolved``, with the outcome
``corrected`` or ``rejected`` and a note), or it passes its ``due_at`` unanswered and
becomes ``escalated``, which puts it before the regulators. An escalated dispute can
still be resolved by its insurer: escalation is the registry asking the regulator to
watch, not a reason to stop the insurer from fixing the data (docs/DECISIONS.md,
"Disputes"). ``resolved`` is final: resolving again is ``409 dispute_closed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ctplhub.domain.errors import DisputeClosed, ValidationFailed

OPEN: Final = "open"
RESOLVED: Final = "resolved"
ESCALATED: Final = "escalated"
STATUSES: Final = (OPEN, RESOLVED, ESCALATED)
KINDS: Final = ("renewal_missing", "wrong_data", "other")
OUTCOMES: Final = ("corrected", "rejected")
RESOLVABLE: Final = (OPEN, ESCALATED)
MAX_TEXT = 2000
"""Characters of an owner's message or an insurer's note (a complaint, not a file)."""

ESCALATION_NOTE: Final = (
    "保险公司未在期限内处理，已提交监管部门 / not resolved by its due date; "
    "referred to the regulator"
)


def checked_kind(raw: object) -> str:
    if isinstance(raw, str) and raw in KINDS:
        return raw
    raise ValidationFailed(
        "kind must be renewal_missing, wrong_data or other",
        details=[{"field": "kind", "problem": "one of " + ", ".join(KINDS)}],
    )


def checked_outcome(raw: object) -> str:
    if isinstance(raw, str) and raw in OUTCOMES:
        return raw
    raise ValidationFailed(
        "outcome must be corrected or rejected",
        details=[{"field": "outcome", "problem": "one of " + ", ".join(OUTCOMES)}],
    )


def checked_status(raw: object) -> str:
    if isinstance(raw, str) and raw in STATUSES:
        return raw
    raise ValidationFailed(
        "status must be open, resolved or escalated",
        details=[{"field": "status", "problem": "one of " + ", ".join(STATUSES)}],
    )


def checked_text(raw: object, field: str, *, required: bool) -> str:
    """Free text, stripped; 1 to 2,000 characters (``required``) or at most 2,000."""
    if raw is None and not required:
        return ""
    if not isinstance(raw, str):
        raise ValidationFailed(
            f"{field} must be a string",
            details=[{"field": field, "problem": "Input should be a valid string"}],
        )
    text = raw.strip()
    if required and not text:
        raise ValidationFailed(
            f"{field} must not be empty", details=[{"field": field, "problem": "empty"}]
        )
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"{field} is at most {MAX_TEXT} characters",
            details=[{"field": field, "problem": f"at most {MAX_TEXT} characters"}],
        )
    return text


def check_resolvable(status: str) -> None:
    """``409 dispute_closed`` unless an insurer may still resolve the dispute."""
    if status not in RESOLVABLE:
        raise DisputeClosed(f"this dispute is {status} and can no longer be resolved")


def is_overdue(status: str, due_at: datetime, at: datetime) -> bool:
    """An open dispute whose deadline has passed at ``at`` is escalated."""
    return status == OPEN and due_at <= at


def resolution_note(outcome: str, note: str) -> str:
    """The history's note of a resolution: the outcome first, so that the status answer
    (whose entries are ``at``, ``status``, ``note``) tells the owner which it was."""
    return f"{outcome}: {note}" if note else outcome
