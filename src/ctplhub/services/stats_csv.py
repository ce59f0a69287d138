"""The regulators' statistics as CSV (DESIGN §11): a header row, then one line per row,
the JSON rows' fields in their order; an empty field for null. Shared by the API
(``Accept: text/csv``) and the regulator page's downloads, as ``compliance.report_csv``
is."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from ctplhub.services.stats import ExpiringReport, LapseReport, RenewalReport

RENEWAL_COLUMNS = ("key", "due", "renewed_on_time", "renewed_late", "lapsed", "renewal_rate")
EXPIRING_COLUMNS = ("date", "count")
LAPSE_COLUMNS = ("key", "vehicles_lapsed", "median_days_lapsed")

_Cell = str | int | float | None


def _csv(columns: Sequence[str], rows: Iterable[Sequence[_Cell]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return buffer.getvalue()


def renewals_csv(report: RenewalReport) -> str:
    return _csv(
        RENEWAL_COLUMNS,
        (
            (r.key, r.due, r.renewed_on_time, r.renewed_late, r.lapsed, r.renewal_rate)
            for r in report.rows
        ),
    )


def expiring_csv(report: ExpiringReport) -> str:
    return _csv(EXPIRING_COLUMNS, ((r.day.isoformat(), r.count) for r in report.rows))


def lapses_csv(report: LapseReport) -> str:
    return _csv(
        LAPSE_COLUMNS, ((r.key, r.vehicles_lapsed, r.median_days_lapsed) for r in report.rows)
    )
