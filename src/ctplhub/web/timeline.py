"""The geometry of the owner's coverage timeline: past policies, gaps, today and the next
policy, as plain numbers the template draws as SVG on the server (no script, no chart
library, nothing from another origin; DESIGN §3). Pure functions of the typed answer.

The window is the year before the answer's instant (the look-back of §2.5's ``gaps``)
and at least 90 days after it, stretched to the end of the last policy but never more
than two years ahead, so a phone's narrow screen still shows a year in readable bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.instants import BEIJING
from ctplhub.services.check_coverage import FullAnswer, PolicyView

WIDTH = 320.0  # the SVG's user units; it scales to the screen's width
_BEFORE = timedelta(days=365)
_AFTER_MIN = timedelta(days=90)
_AFTER_MAX = timedelta(days=730)


@dataclass(frozen=True, slots=True)
class Bar:
    """One policy's cover; ``kind`` is ``past``, ``current`` or ``next`` (a later one)."""

    x: float
    width: float
    kind: str
    insurer: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class GapMark:
    x: float
    width: float
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    year: int


@dataclass(frozen=True, slots=True)
class Timeline:
    width: float
    bars: tuple[Bar, ...]
    gaps: tuple[GapMark, ...]
    ticks: tuple[Tick, ...]
    now_x: float


def _kind(policy: PolicyView, answer: FullAnswer) -> str:
    if policy.coverage_start <= answer.at < policy.coverage_end:
        return "current"
    return "next" if policy.coverage_start > answer.at else "past"


def timeline(answer: FullAnswer, history: Sequence[PolicyView]) -> Timeline:
    """The bars, gap marks, year ticks and the "now" line of one vehicle's answer."""
    first = answer.at - _BEFORE
    last_end = max((p.coverage_end for p in history), default=answer.at)
    last = min(max(answer.at + _AFTER_MIN, last_end), answer.at + _AFTER_MAX)
    span = (last - first).total_seconds()

    def x_of(at: datetime) -> float:
        clipped = min(max(at, first), last)
        return round((clipped - first).total_seconds() / span * WIDTH, 1)

    bars = tuple(
        Bar(
            x_of(p.coverage_start),
            max(x_of(p.coverage_end) - x_of(p.coverage_start), 1.0),
            _kind(p, answer),
            p.insurer_name or p.insurer_code,
            p.coverage_start,
            p.coverage_end,
        )
        for p in history
        if p.coverage_end > first and p.coverage_start < last
    )
    gaps = tuple(
        GapMark(x_of(g.start), max(x_of(g.end) - x_of(g.start), 1.0), g.start, g.end)
        for g in answer.gaps
    )
    ticks = []
    year = first.astimezone(BEIJING).year + 1
    while (start := datetime(year, 1, 1, tzinfo=BEIJING)) < last:
        ticks.append(Tick(x_of(start), year))
        year += 1
    return Timeline(WIDTH, bars, gaps, tuple(ticks), x_of(answer.at))
