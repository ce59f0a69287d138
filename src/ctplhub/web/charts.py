"""Server-rendered SVG charts for the staff pages: no script, nothing from another origin
(DESIGN §3). Pure functions of numbers; every text is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ctplhub.services.sync_health import DayActivity

_W, _H = 320, 90  # viewBox of the bars; labels below
_PAD_TOP = 6
_LABEL_H = 14


def activity_chart(days: Sequence[DayActivity], *, label: str) -> str:
    """Accepted (below) and rejected (stacked above) per day, one bar a day, oldest left;
    each bar's ``<title>`` gives the day and both counts."""
    top = max((d.accepted + d.rejected for d in days), default=0)
    scale = (_H - _PAD_TOP) / top if top else 0.0
    slot = _W / max(len(days), 1)
    bar = max(slot - 2, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H + _LABEL_H}" width="{_W}" '
        f'height="{_H + _LABEL_H}" role="img" aria-label="{escape(label)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="0" y1="{_H}" x2="{_W}" y2="{_H}" class="axis" stroke="#999"/>',
    ]
    for i, d in enumerate(days):
        x = round(i * slot + 1, 1)
        ok_h = round(d.accepted * scale, 1)
        bad_h = round(d.rejected * scale, 1)
        tip = escape(f"{d.day.isoformat()}：接收 {d.accepted}，拒收 {d.rejected}")
        parts.append(f'<g class="day" data-day="{d.day.isoformat()}"><title>{tip}</title>')
        parts.append(
            f'<rect class="accepted" x="{x}" y="{round(_H - ok_h, 1)}" width="{round(bar, 1)}" '
            f'height="{ok_h}" fill="#2e7d32"/>'
        )
        parts.append(
            f'<rect class="rejected" x="{x}" y="{round(_H - ok_h - bad_h, 1)}" '
            f'width="{round(bar, 1)}" height="{bad_h}" fill="#c62828"/>'
        )
        parts.append("</g>")
    if days:
        y = _H + _LABEL_H - 2
        first, last = days[0].day.strftime("%m-%d"), days[-1].day.strftime("%m-%d")
        parts.append(f'<text x="0" y="{y}" font-size="10">{first}</text>')
        parts.append(f'<text x="{_W}" y="{y}" font-size="10" text-anchor="end">{last}</text>')
        parts.append(f'<text x="{_W}" y="10" font-size="10" text-anchor="end">峰值 {top}</text>')
    parts.append("</svg>")
    return "".join(parts)
