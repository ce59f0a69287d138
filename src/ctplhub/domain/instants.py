"""Instants: answers speak Beijing time (UTC+08:00), storage speaks UTC.

Every instant that enters the system goes through :func:`parse_instant`: RFC 3339 with
an explicit offset, between 2000-01-01 and 2100-01-01 Beijing time (DESIGN §2.5). The
bound keeps every date sum the rules do (a year of look-back, a reminder window) far from
Python's year 1 and 9999, so no input can make the arithmetic overflow.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from ctplhub.domain.errors import InvalidInstant

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
EARLIEST = datetime(2000, 1, 1, tzinfo=BEIJING)
"""The first instant the registry accepts."""
END_OF_RANGE = datetime(2100, 1, 1, tzinfo=BEIJING)
"""The first instant it no longer accepts (the range is half-open)."""


def parse_instant(raw: object, field: str) -> datetime:
    """An RFC 3339 instant with an explicit offset inside the accepted range, in UTC."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInstant(
            f"{field} must be an RFC 3339 date-time string with an offset",
            details={"field": field},
        )
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInstant(
            f"{field} '{text[:40]}' is not an RFC 3339 date-time", details={"field": field}
        ) from None
    if value.tzinfo is None or value.utcoffset() is None or "T" not in text.upper():
        raise InvalidInstant(
            f"{field} '{text[:40]}' has no UTC offset; write e.g. 2026-03-01T00:00:00+08:00",
            details={"field": field},
        )
    # Comparing aware datetimes never overflows, converting them can: compare first. An
    # instant whose local year lies strictly inside the range is inside it whatever its
    # offset (under a day), which spares most instants the comparison's offset sums.
    if not 2000 < value.year < 2099 and not EARLIEST <= value < END_OF_RANGE:
        raise InvalidInstant(
            f"{field} '{text[:40]}' is outside the accepted range: from "
            "2000-01-01T00:00:00+08:00 up to (not including) 2100-01-01T00:00:00+08:00",
            details={"field": field},
        )
    return value.astimezone(UTC)


@lru_cache(maxsize=16_384)
def format_instant(value: datetime) -> str:
    """RFC 3339 in Beijing time, to the second: ``2026-11-25T10:00:00+08:00``.

    Cached: an answer formats half a dozen instants, and policy starts and ends (whole
    days, mostly) recur across vehicles."""
    return value.astimezone(BEIJING).isoformat(timespec="seconds")


def format_optional(value: datetime | None) -> str | None:
    return format_instant(value) if value is not None else None
