"""JSON and CSV of sync health, reconciliation and late reports (DESIGN §2.6, §10): the
typed results of ``services/sync_health.py``, ``services/reconcile.py`` and
``services/compliance.py`` on the wire. Instants in Beijing time, delays in seconds."""

from __future__ import annotations

from typing import Any

from ctplhub.domain.instants import format_optional
from ctplhub.domain.reconciliation import BookDiff
from ctplhub.domain.reporting_delays import DelayStats
from ctplhub.services.compliance import STATS_FIELDS, MonthlyCompliance, report_csv, stats_values
from ctplhub.services.reconcile import DigestComparison
from ctplhub.services.sync_health import InsurerHealth


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def sync_health(h: InsurerHealth) -> dict[str, Any]:
    """§3's sync fields, in their order, then what sync health adds."""
    return {
        "insurer_code": h.insurer_code,
        "status": h.status,
        "last_sync_at": format_optional(h.watermark),
        "lag_s": h.lag_s,
        "stale": h.stale,
        "accepted_24h": h.accepted_24h,
        "rejected_24h": h.rejected_24h,
        "watermark": format_optional(h.watermark),
        "accepted_total": h.accepted_total,
        "rejected_total": h.rejected_total,
        "events_24h": h.events_24h,
        "late_24h": h.late_24h,
        "median_delay_s": _seconds(h.median_delay_s),
    }


def digest_comparison(result: DigestComparison) -> dict[str, Any]:
    return {
        "match": result.match,
        "platform_count": result.platform.count,
        "platform_digest": result.platform.digest,
    }


def book_diff(diff: BookDiff) -> dict[str, Any]:
    return {
        "missing_here": list(diff.missing_here),
        "version_differs": [
            {"policy_no": d.policy_no, "yours": d.yours, "ours": d.ours}
            for d in diff.version_differs
        ],
        "unknown_to_you": list(diff.unknown_to_you),
    }


def _stats(stats: DelayStats) -> dict[str, Any]:
    return dict(zip(STATS_FIELDS, stats_values(stats), strict=True))


def compliance(report: MonthlyCompliance) -> dict[str, Any]:
    return {"insurer_code": report.insurer_code, "month": str(report.month), **_stats(report.stats)}


def compliance_csv(report: MonthlyCompliance) -> str:
    """The monthly report as CSV (``services/compliance.py``, shared with the page)."""
    return report_csv(report)
