"""Sync health for regulators (DESIGN §2.6, issue 10 item 1): per insurer its watermark,
lag, accepted and rejected counts (last 24 h and in total), and its reporting delay
(received minus ``occurred_at``) over the last 24 h; and accepted and rejected per
Beijing day for the last 30 days, for the regulator page's chart.

Counts come from ``insurer_activity`` (written by ingest per insurer and minute), delays
from the stored events; the watermark is the insurers table's ``last_sync_at``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from ctplhub.domain.errors import InsurerMismatch, UnknownInsurer
from ctplhub.domain.instants import BEIJING
from ctplhub.domain.reporting_delays import delay_stats
from ctplhub.services.ports import Clock, InsurerRecord

DAY = timedelta(hours=24)
CHART_DAYS = 30


class HealthSource(Protocol):
    def insurers(self) -> list[InsurerRecord]: ...
    def activity(self, since: datetime) -> dict[str, tuple[int, int, int, int]]: ...
    def daily_activity(self, since: datetime) -> list[tuple[str, str, int, int]]: ...
    def delays(
        self, insurer_code: str, since: datetime, until: datetime
    ) -> Iterator[tuple[datetime, float]]: ...


@dataclass(frozen=True, slots=True)
class InsurerHealth:
    insurer_code: str
    name: str
    status: str  # certification (§5.2)
    watermark: datetime | None  # §2.6: latest accepted event received, or heartbeat
    lag_s: float | None
    stale: bool
    accepted_24h: int
    rejected_24h: int
    accepted_total: int
    rejected_total: int
    events_24h: int  # accepted events received in the last 24 h (stored ones)
    late_24h: int  # of which late (§10)
    median_delay_s: float | None  # over the events of the last 24 h


@dataclass(frozen=True, slots=True)
class DayActivity:
    day: date  # Beijing calendar day
    accepted: int
    rejected: int


@dataclass(frozen=True, slots=True)
class InsurerChart:
    insurer_code: str
    days: tuple[DayActivity, ...]  # the last ``CHART_DAYS`` days, oldest first, zero-filled


class SyncHealth:
    def __init__(
        self,
        source: HealthSource,
        clock: Clock,
        *,
        stale_after: timedelta,
        late_after_s: float,
    ) -> None:
        self._source = source
        self._clock = clock
        self._stale_after = stale_after
        self._late_after_s = late_after_s

    def one(self, code: str, *, caller: str | None = None) -> InsurerHealth:
        """One insurer's health; ``caller``, when an insurer asks, must be that insurer."""
        if caller is not None and code != caller:
            raise InsurerMismatch(f"this key belongs to insurer {caller}")
        found = [r for r in self._source.insurers() if r.code == code]
        if not found:
            raise UnknownInsurer(f"no insurer {code}")
        return self._health(found, self._clock())[0]

    def all(self) -> list[InsurerHealth]:
        """Every insurer, by code."""
        return self._health(self._source.insurers(), self._clock())

    def charts(self) -> list[InsurerChart]:
        """Accepted and rejected per Beijing day, the last ``CHART_DAYS`` days to today."""
        today = self._clock().astimezone(BEIJING).date()
        first = today - timedelta(days=CHART_DAYS - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=BEIJING)
        counts: dict[tuple[str, str], tuple[int, int]] = {
            (code, day): (a, r) for code, day, a, r in self._source.daily_activity(since)
        }
        days = [first + timedelta(days=i) for i in range(CHART_DAYS)]
        return [
            InsurerChart(
                r.code,
                tuple(DayActivity(d, *counts.get((r.code, d.isoformat()), (0, 0))) for d in days),
            )
            for r in self._source.insurers()
        ]

    def _health(self, records: list[InsurerRecord], now: datetime) -> list[InsurerHealth]:
        activity = self._source.activity(now - DAY)
        answers = []
        for record in records:
            last = record.last_sync_at
            lag = (now - last).total_seconds() if last else None
            delays = [d for _, d in self._source.delays(record.code, now - DAY, now + DAY)]
            stats = delay_stats(delays, self._late_after_s)
            a24, r24, a_all, r_all = activity.get(record.code, (0, 0, 0, 0))
            answers.append(
                InsurerHealth(
                    insurer_code=record.code,
                    name=record.name,
                    status=record.status,
                    watermark=last,
                    lag_s=round(lag, 3) if lag is not None else None,
                    stale=lag is None or lag > self._stale_after.total_seconds(),
                    accepted_24h=a24,
                    rejected_24h=r24,
                    accepted_total=a_all,
                    rejected_total=r_all,
                    events_24h=stats.events,
                    late_24h=stats.late,
                    median_delay_s=stats.median_delay_s,
                )
            )
        return answers
