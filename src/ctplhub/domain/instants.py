"""Instants: answers speak Beijing time (UTC+08:00), storage speaks UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def format_instant(value: datetime) -> str:
    """RFC 3339 in Beijing time, to the second: ``2026-11-25T10:00:00+08:00``."""
    return value.astimezone(BEIJING).replace(microsecond=0).isoformat()


def format_optional(value: datetime | None) -> str | None:
    return format_instant(value) if value is not None else None
