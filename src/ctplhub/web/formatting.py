"""Turn a coverage answer (DESIGN §3.1) into what the pages print.

The service answers with instants and status codes; the templates choose the words, in
the reader's language, from the message catalogues (``web/i18n.py``). What is here is
language-free: the status's colour and icon, instants moved to Beijing time, and the
answer's parts picked out as typed fields, so templates stay free of logic and these
rules can be tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.services.check_coverage import AnswerWithHistory, FullAnswer, PolicyView
from ctplhub.web.timeline import Timeline, timeline

# Colour classes of the status banner (site.css); the status is shown in words and with
# an icon too, so colour is never the only signal.
STATUS_TONE = {
    "RENEWED": "green",
    "ACTIVE": "green",
    "EXPIRING_SOON": "amber",
    "PENDING_START": "amber",
    "LAPSED": "red",
    "NO_RECORD": "grey",
}

# The icon beside the words (templates/_icons.html): a tick for cover, a clock for time
# running out or not yet begun, a cross for no cover, a question mark for no record.
STATUS_ICON = {
    "RENEWED": "tick",
    "ACTIVE": "tick",
    "EXPIRING_SOON": "clock",
    "PENDING_START": "clock",
    "LAPSED": "cross",
    "NO_RECORD": "question",
}


@dataclass(frozen=True, slots=True)
class CaveatView:
    """A caveat by code (the template words it), with the insurer it names and, for a
    stale insurer, when it last synced."""

    code: str
    insurer: str
    last_sync_at: datetime | None
    message: str


@dataclass(frozen=True, slots=True)
class AnswerView:
    """One verified answer, ready to print."""

    status: str
    tone: str
    icon: str
    plate: str
    vin_masked: str
    current: PolicyView | None
    next: PolicyView | None
    covered_until: datetime | None
    days_to_expiry: int | None
    lapsed_since: datetime | None
    days_lapsed: int | None
    as_of: datetime
    caveats: tuple[CaveatView, ...]
    duplicate_coverage: bool
    timeline: Timeline

    @property
    def renewed(self) -> bool:
        return self.status == CoverageStatus.RENEWED.value


def _caveats(answer: FullAnswer) -> tuple[CaveatView, ...]:
    last_sync = {s.insurer_code: s.last_sync_at for s in answer.sources}
    return tuple(
        CaveatView(c.code, c.insurer_code or "", last_sync.get(c.insurer_code or ""), c.message)
        for c in answer.caveats
    )


def describe_answer(found: AnswerWithHistory) -> AnswerView:
    answer = found.answer
    status = answer.status.value
    return AnswerView(
        status=status,
        tone=STATUS_TONE.get(status, "grey"),
        icon=STATUS_ICON.get(status, "question"),
        plate=answer.plate.display,
        vin_masked=answer.vin_masked,
        current=answer.current_policy,
        next=answer.next_policy,
        covered_until=answer.covered_until,
        days_to_expiry=answer.days_to_expiry,
        lapsed_since=answer.lapsed_since,
        days_lapsed=answer.days_lapsed,
        as_of=answer.as_of,
        caveats=_caveats(answer),
        duplicate_coverage=answer.duplicate_coverage,
        timeline=timeline(answer, found.history),
    )
