"""Instants: answers speak Beijing time (UTC+08:00), storage speaks UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


@lru_cache(maxsize=16_384)
def format_instant(value: datetime) -> str:
    """RFC 3339 in Beijing time, to the second: ``2026-11-25T10:00:00+08:00``.

    Cached: an answer formats half a dozen instants, and policy starts and ends (whole
    days, mostly) recur across vehicles."""
    return value.astimezone(BEIJING).isoformat(timespec="seconds")


def format_optional(value: datetime | None) -> str | None:
    return format_instant(value) if value is not None else None
