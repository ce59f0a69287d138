"""Reporting delays (DESIGN §10 "Late reports"): how long after ``occurred_at`` an event
reached the platform, the month it counts in, and nearest-rank percentiles.

An event counts in the calendar month, in Beijing time, in which it was *received*; it is
late when received more than ``late_after_s`` seconds after it occurred.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.instants import BEIJING

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in Beijing time, ``YYYY-MM``."""

    year: int
    month: int

    @classmethod
    def parse(cls, raw: object) -> Month:
        match = _MONTH.match(raw) if isinstance(raw, str) else None
        if match is None or not 1 <= int(match[2]) <= 12 or not 2000 <= int(match[1]) <= 2099:
            raise ValidationFailed(
                "month must be YYYY-MM between 2000-01 and 2099-12, e.g. 2026-11",
                details={"field": "month"},
            )
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, instant: datetime) -> Month:
        local = instant.astimezone(BEIJING)
        return cls(local.year, local.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=BEIJING)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (half-open ``[start, end)``)."""
        if self.month == 12:
            return datetime(self.year + 1, 1, 1, tzinfo=BEIJING)
        return datetime(self.year, self.month + 1, 1, tzinfo=BEIJING)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def nearest_rank(ordered: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile of values sorted ascending: the value at rank
    ``ceil(percent / 100 * n)`` (1-based), the smallest for 0; None when there are none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class DelayStats:
    events: int
    late: int
    median_delay_s: float | None
    p95_delay_s: float | None

    @property
    def late_share(self) -> float:
        return self.late / self.events if self.events else 0.0


def delay_stats(delays: list[float], late_after_s: float) -> DelayStats:
    """Counts and percentiles of reporting delays in seconds (sorts ``delays`` in place)."""
    delays.sort()
    late = len(delays) - bisect_right(delays, late_after_s)
    return DelayStats(len(delays), late, nearest_rank(delays, 50), nearest_rank(delays, 95))
