"""What the staff pages read from a form and print in a table (pure functions).

The bulk verify form takes plates one per line and an optional instant typed in
Beijing time; the results table shows per plate only what the API's bulk verify shows
(status, insurer code, cover end, caveats): no owner, no VIN, no policy number.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.instants import BEIJING
from ctplhub.services.verify_bulk import RejectedItem, VerifyResult
from ctplhub.web.formatting import STATUS_TONE, beijing

MAX_PLATES = 1000  # a roadside list or a day's inspections; bigger lists use the API

_CAVEAT_ZH = {
    "stale_insurer": "该保险公司数据同步滞后，结果可能不是最新",
    "insurer_revoked": "承保公司的平台接入资格已被撤销",
    "insurer_suspended": "承保公司的平台接入资格已被暂停",
}


@dataclass(frozen=True, slots=True)
class ResultRow:
    plate: str
    status: str  # the §2.5 code, or "ERROR"
    status_text: str
    tone: str
    insurer: str
    covered_until: str
    notes: str


def plate_lines(text: str) -> list[str]:
    """The non-empty lines of the plates box, at most ``MAX_PLATES``."""
    lines = [line.strip() for line in text.splitlines()]
    plates = [line for line in lines if line]
    if not plates:
        raise ValidationFailed("请至少填写一个号牌（每行一个）")
    if len(plates) > MAX_PLATES:
        raise ValidationFailed(f"一次最多核验 {MAX_PLATES} 个号牌，更多请使用接口批量核验")
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
        raise ValidationFailed("核验时间格式不正确，例如 2026-12-01 08:30") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=BEIJING)
    return at.isoformat()


def result_rows(results: list[VerifyResult]) -> list[ResultRow]:
    rows = []
    for result in results:
        if isinstance(result, RejectedItem):
            rows.append(
                ResultRow(
                    result.given or "",
                    "ERROR",
                    "无法核验",
                    "grey",
                    "—",
                    "—",
                    result.error.message,
                )
            )
            continue
        status = result.status
        notes = "；".join(_CAVEAT_ZH.get(c.code, c.message) for c in result.caveats)
        rows.append(
            ResultRow(
                result.plate.display if result.plate else "",
                status.value,
                status.text_zh,
                STATUS_TONE.get(status.value, "grey"),
                result.insurer_code or "—",
                beijing(result.covered_until),
                notes,
            )
        )
    return rows
