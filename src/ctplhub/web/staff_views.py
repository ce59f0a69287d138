"""What the staff pages read from a form and print in a table (pure functions).

The bulk verify form takes plates one per line and an optional instant typed in
Beijing time; the results table shows per plate only what the API's bulk verify shows
(status, insurer code, cover end, caveats): no owner, no VIN, no policy number.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.instants import BEIJING
from ctplhub.services.verify_bulk import RejectedItem, VerifyResult
from ctplhub.web.formatting import STATUS_TONE

MAX_PLATES = 1000  # a roadside list or a day's inspections; bigger lists use the API


class FormProblem(ValueError):
    """What is wrong with the form, as a code the page words (``staff_macros.html``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One plate's row; words (status, caveats) are the template's, by code."""

    plate: str
    status: str  # the §2.5 code, or "ERROR"
    tone: str
    insurer: str
    covered_until: datetime | None
    caveats: tuple[str, ...]
    error: str | None = None  # the API's own (English) message of a rejected item


def plate_lines(text: str) -> list[str]:
    """The non-empty lines of the plates box, at most ``MAX_PLATES``."""
    lines = [line.strip() for line in text.splitlines()]
    plates = [line for line in lines if line]
    if not plates:
        raise FormProblem("no_plates")
    if len(plates) > MAX_PLATES:
        raise FormProblem("too_many_plates")
    return plates


def beijing_instant(raw: str) -> str | None:
    """The form's optional ``datetime-local`` value (Beijing time, no offset) as an
    RFC 3339 instant, or None for "now"."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise FormProblem("bad_instant") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=BEIJING)
    return at.isoformat()


def result_rows(results: list[VerifyResult]) -> list[ResultRow]:
    rows = []
    for result in results:
        if isinstance(result, RejectedItem):
            rows.append(
                ResultRow(result.given or "", "ERROR", "grey", "—", None, (), result.error.message)
            )
            continue
        status = result.status
        rows.append(
            ResultRow(
                result.plate.display if result.plate else "",
                status.value,
                STATUS_TONE.get(status.value, "grey"),
                result.insurer_code or "—",
                result.covered_until,
                tuple(c.code for c in result.caveats),
            )
        )
    return rows
