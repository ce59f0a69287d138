"""The geometry of the statistics page's SVG charts (``staff_stats.html``): plain
numbers a template draws, so every word is the catalogues' and nothing is loaded from
another origin (DESIGN §3). Pure functions of the statistics' rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ctplhub.services.stats import DayCount, LapseRow, RenewalRow

WIDTH = 480  # viewBox width of every chart
LABEL_W = 80  # the key's label, left of a horizontal bar
ROW_H, ROW_GAP = 16, 4
DAYS_H = 100  # height of the expiring chart's bars


@dataclass(frozen=True, slots=True)
class RenewalBar:
    """One group: on time (green), late (amber), lapsed (red), as shares of those due."""

    row: RenewalRow
    y: int
    on_time_w: float
    late_x: float
    late_w: float
    lapsed_x: float
    lapsed_w: float


@dataclass(frozen=True, slots=True)
class RenewalChart:
    width: int
    height: int
    label_w: int
    row_h: int
    bars: tuple[RenewalBar, ...]


@dataclass(frozen=True, slots=True)
class DayColumn:
    day: date
    count: int
    x: float
    width: float
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class DaysChart:
    width: int
    height: int
    columns: tuple[DayColumn, ...]
    peak: int


@dataclass(frozen=True, slots=True)
class LapseBar:
    row: LapseRow
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class LapseChart:
    width: int
    height: int
    label_w: int
    row_h: int
    bars: tuple[LapseBar, ...]
    peak: int


def renewal_chart(rows: Sequence[RenewalRow]) -> RenewalChart:
    """A full-width bar per group: the same scale for a big insurer and a small one."""
    span = WIDTH - LABEL_W
    bars = []
    for i, row in enumerate(rows):
        share = span / row.due if row.due else 0.0
        on_time = round(row.renewed_on_time * share, 1)
        late = round(row.renewed_late * share, 1)
        lapsed = round(row.lapsed * share, 1)
        bars.append(
            RenewalBar(
                row,
                i * (ROW_H + ROW_GAP),
                on_time,
                round(LABEL_W + on_time, 1),
                late,
                round(LABEL_W + on_time + late, 1),
                lapsed,
            )
        )
    height = max(len(rows) * (ROW_H + ROW_GAP), ROW_H)
    return RenewalChart(WIDTH, height, LABEL_W, ROW_H, tuple(bars))


def days_chart(rows: Sequence[DayCount]) -> DaysChart:
    """One column a day, soonest left, scaled to the busiest day."""
    peak = max((r.count for r in rows), default=0)
    scale = (DAYS_H - 6) / peak if peak else 0.0
    slot = WIDTH / max(len(rows), 1)
    width = round(max(slot - 1, 0.5), 2)
    columns = []
    for i, r in enumerate(rows):
        h = round(r.count * scale, 1)
        x = round(i * slot, 2)
        columns.append(DayColumn(r.day, r.count, x, width, round(DAYS_H - h, 1), h))
    return DaysChart(WIDTH, DAYS_H, tuple(columns), peak)


def lapse_chart(rows: Sequence[LapseRow]) -> LapseChart:
    """A bar per group, scaled to the group with the most lapsed vehicles."""
    peak = max((r.vehicles_lapsed for r in rows), default=0)
    span = WIDTH - LABEL_W - 60  # room for the count written after the bar
    bars = tuple(
        LapseBar(r, i * (ROW_H + ROW_GAP), round(r.vehicles_lapsed * span / peak, 1) if peak else 0)
        for i, r in enumerate(rows)
    )
    height = max(len(rows) * (ROW_H + ROW_GAP), ROW_H)
    return LapseChart(WIDTH, height, LABEL_W, ROW_H, bars, peak)
