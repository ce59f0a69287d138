"""The regulators' statistics as JSON (DESIGN §11); the CSV is ``services/stats_csv.py``,
shared with the regulator page's downloads."""

from __future__ import annotations

from typing import Any

from ctplhub.domain.instants import format_instant
from ctplhub.services.stats import ExpiringReport, LapseReport, RenewalReport


def renewals_json(report: RenewalReport) -> dict[str, Any]:
    return {
        "group_by": report.group_by.value,
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "as_of": format_instant(report.as_of),
        "stale": report.stale,
        "rows": [
            {
                "key": r.key,
                "due": r.due,
                "renewed_on_time": r.renewed_on_time,
                "renewed_late": r.renewed_late,
                "lapsed": r.lapsed,
                "renewal_rate": r.renewal_rate,
            }
            for r in report.rows
        ],
    }


def expiring_json(report: ExpiringReport) -> dict[str, Any]:
    return {
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "as_of": format_instant(report.as_of),
        "stale": report.stale,
        "rows": [{"date": r.day.isoformat(), "count": r.count} for r in report.rows],
    }


def lapses_json(report: LapseReport) -> dict[str, Any]:
    return {
        "group_by": report.group_by.value,
        "as_of": format_instant(report.as_of),
        "stale": report.stale,
        "rows": [
            {
                "key": r.key,
                "vehicles_lapsed": r.vehicles_lapsed,
                "median_days_lapsed": r.median_days_lapsed,
            }
            for r in report.rows
        ],
    }
