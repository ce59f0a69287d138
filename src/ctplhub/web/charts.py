"""The geometry of the staff pages' SVG charts: plain numbers that a template macro draws
(``staff_macros.html``: ``activity_chart``, ``risk_chart``), so every word is the
catalogues' and the page stays free of script and of anything from another origin (DESIGN §3). Pure
functions of numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ctplhub.services.forecast import RiskGroup
from ctplhub.services.sync_health import DayActivity

WIDTH, HEIGHT = 320, 90  # viewBox of the bars; labels below
_PAD_TOP = 6
LABEL_H = 14


@dataclass(frozen=True, slots=True)
class DayBar:
    """One day: accepted (below) and rejected (stacked above)."""

    day: date
    accepted: int
    rejected: int
    x: float
    width: float
    accepted_y: float
    accepted_h: float
    rejected_y: float
    rejected_h: float


@dataclass(frozen=True, slots=True)
class ActivityChart:
    width: int
    height: int
    label_h: int
    bars: tuple[DayBar, ...]
    peak: int


def activity_chart(days: Sequence[DayActivity]) -> ActivityChart:
    """One bar a day, oldest left, scaled to the busiest day."""
    top = max((d.accepted + d.rejected for d in days), default=0)
    scale = (HEIGHT - _PAD_TOP) / top if top else 0.0
    slot = WIDTH / max(len(days), 1)
    bar = round(max(slot - 2, 1), 1)
    bars = []
    for i, d in enumerate(days):
        ok_h = round(d.accepted * scale, 1)
        bad_h = round(d.rejected * scale, 1)
        bars.append(
            DayBar(
                d.day,
                d.accepted,
                d.rejected,
                round(i * slot + 1, 1),
                bar,
                round(HEIGHT - ok_h, 1),
                ok_h,
                round(HEIGHT - ok_h - bad_h, 1),
                bad_h,
            )
        )
    return ActivityChart(WIDTH, HEIGHT, LABEL_H, tuple(bars), top)


@dataclass(frozen=True, slots=True)
class RiskBar:
    """One group of the lapse forecast: a bar as long as its expected lapses."""

    key: str
    expected_lapses: float
    vehicles: int
    y: float
    width: float


@dataclass(frozen=True, slots=True)
class RiskChart:
    width: int
    height: int
    label_w: int
    bar_h: int
    bars: tuple[RiskBar, ...]
    peak: float


RISK_LABEL_W, RISK_BAR_H = 64, 16


def risk_chart(rows: Sequence[RiskGroup], limit: int = 20) -> RiskChart:
    """Horizontal bars, the most expected lapses on top, scaled to the largest."""
    shown = list(rows[:limit])
    peak = max((r.expected_lapses for r in shown), default=0.0)
    room = WIDTH - RISK_LABEL_W - 4
    bars = tuple(
        RiskBar(
            r.key,
            r.expected_lapses,
            r.vehicles,
            i * (RISK_BAR_H + 4),
            round(room * r.expected_lapses / peak, 1) if peak else 0.0,
        )
        for i, r in enumerate(shown)
    )
    return RiskChart(WIDTH, len(bars) * (RISK_BAR_H + 4), RISK_LABEL_W, RISK_BAR_H, bars, peak)
