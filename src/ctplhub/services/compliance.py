"""Late reports (DESIGN §10): per insurer and calendar month in Beijing time, how many
events it reported, how many late, and its median and 95th-percentile reporting delay
(nearest rank), for the compliance endpoint, its CSV report and the regulator page.

An event counts in the month in which it was *received*; it is late when received more
than ``CTPLHUB_LATE_AFTER_S`` (default 86,400 s) after its ``occurred_at``. Only stored
events count: a rejected line has no trustworthy ``occurred_at``, and an identical repeat
is the first event again, not a new report.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from ctplhub.domain.errors import InsurerMismatch, UnknownInsurer
from ctplhub.domain.instants import BEIJING
from ctplhub.domain.reporting_delays import DelayStats, Month, delay_stats
from ctplhub.services.sync_health import HealthSource


@dataclass(frozen=True, slots=True)
class DayCompliance:
    day: date  # Beijing calendar day of receipt
    stats: DelayStats


@dataclass(frozen=True, slots=True)
class MonthlyCompliance:
    insurer_code: str
    month: Month
    stats: DelayStats
    days: tuple[DayCompliance, ...]  # the days that had events, in order


class Compliance:
    def __init__(self, source: HealthSource, *, late_after_s: float) -> None:
        self._source = source
        self.late_after_s = late_after_s

    def month(self, code: str, month: object, *, caller: str | None = None) -> MonthlyCompliance:
        """One insurer's month (``YYYY-MM``); ``caller``, when an insurer asks, must be
        that insurer (a regulator asks with ``caller=None``)."""
        if caller is not None and code != caller:
            raise InsurerMismatch(f"this key belongs to insurer {caller}")
        which = Month.parse(month)
        if code not in {r.code for r in self._source.insurers()}:
            raise UnknownInsurer(f"no insurer {code}")
        return self._month(code, which)

    def every_insurer(self, month: object) -> list[MonthlyCompliance]:
        which = Month.parse(month)
        return [self._month(r.code, which) for r in self._source.insurers()]

    def _month(self, code: str, month: Month) -> MonthlyCompliance:
        every: list[float] = []
        by_day: dict[date, list[float]] = defaultdict(list)
        for received, delay in self._source.delays(code, month.start, month.end):
            every.append(delay)
            by_day[received.astimezone(BEIJING).date()].append(delay)
        days = tuple(
            DayCompliance(day, delay_stats(by_day[day], self.late_after_s))
            for day in sorted(by_day)
        )
        return MonthlyCompliance(code, month, delay_stats(every, self.late_after_s), days)


STATS_FIELDS = ("events", "late", "late_share", "median_delay_s", "p95_delay_s")
CSV_COLUMNS = ("insurer_code", "month", "day", *STATS_FIELDS)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def stats_values(stats: DelayStats) -> tuple[int, int, float, float | None, float | None]:
    """The §10 figures in ``STATS_FIELDS`` order, as the wire shows them."""
    return (
        stats.events,
        stats.late,
        round(stats.late_share, 6),
        _seconds(stats.median_delay_s),
        _seconds(stats.p95_delay_s),
    )


def report_csv(report: MonthlyCompliance) -> str:
    """The monthly report: one row per Beijing day that had events, then the month's
    total (``day`` = ``total``); a delay of a day without events is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    month = str(report.month)
    rows = [(day.day.isoformat(), day.stats) for day in report.days]
    for label, stats in [*rows, ("total", report.stats)]:
        values = ("" if v is None else v for v in stats_values(stats))
        writer.writerow([report.insurer_code, month, label, *values])
    return out.getvalue()
