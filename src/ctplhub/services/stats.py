"""Statistics for regulators (DESIGN §11; issue 12 item 5): renewals, the expiring
volume, lapses.

Every figure is read from aggregates (``StatsStore``) that an incremental refresh keeps
up to date from the events received since a watermark: ``ctplhub stats refresh``, the
worker every minute, ``serve`` in its background, and a request that finds events
waiting (up to ``on_demand_events`` of them; beyond that it answers ``stale``). Ingest
itself pays nothing (docs/DECISIONS.md, "Statistics for regulators").

- **Renewals** by insurer, region or month of the policies *due* in ``[from, to]`` (Beijing
  days of the cover's end; ``to`` is cut to yesterday, the last complete day, so that
  every unrenewed policy counted has really lapsed): ``renewed_on_time`` when the vehicle
  is covered at the end instant, ``renewed_late`` when a later policy starts after a
  gap, ``lapsed`` otherwise; ``renewal_rate`` = renewed (either way) / due.
- **Expiring**: for each of the next ``days`` days, the policies whose cover ends then
  and whose vehicle has no next policy yet.
- **Lapses**: the vehicles ``LAPSED`` now (§2.5), by the region (or insurer) of their
  last policy, with the median of their ``days_lapsed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.renewal_stats import beijing_day, days_lapsed, weighted_median
from ctplhub.services.stats_ports import GroupBy, StatsStore

DEFAULT_SPAN_DAYS = 365
MAX_SPAN_DAYS = 3660  # ten years of days: a bigger period is ``range_too_large``
DEFAULT_EXPIRING_DAYS = 90
MAX_EXPIRING_DAYS = 366
STEP_EVENTS = 20_000  # events per refresh transaction
# What a request may count itself (well under 1 s) before answering ``stale``.
ON_DEMAND_EVENTS = 1_000


@dataclass(frozen=True, slots=True)
class RefreshReport:
    events: int
    vehicles: int
    last_event_id: int
    complete: bool  # no event ready past the watermark


@dataclass(frozen=True, slots=True)
class RenewalRow:
    key: str
    due: int
    renewed_on_time: int
    renewed_late: int
    lapsed: int

    @property
    def renewal_rate(self) -> float | None:
        renewed = self.renewed_on_time + self.renewed_late
        return round(renewed / self.due, 4) if self.due else None


@dataclass(frozen=True, slots=True)
class RenewalReport:
    group_by: GroupBy
    first: date
    last: date
    as_of: datetime
    stale: bool
    rows: tuple[RenewalRow, ...]


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True, slots=True)
class ExpiringReport:
    first: date
    last: date
    as_of: datetime
    stale: bool
    rows: tuple[DayCount, ...]


@dataclass(frozen=True, slots=True)
class LapseRow:
    key: str
    vehicles_lapsed: int
    median_days_lapsed: float | None


@dataclass(frozen=True, slots=True)
class LapseReport:
    group_by: GroupBy
    as_of: datetime
    stale: bool
    rows: tuple[LapseRow, ...]


def _group_by(raw: str | None, allowed: tuple[GroupBy, ...], default: GroupBy) -> GroupBy:
    if raw is None or raw == "":
        return default
    for choice in allowed:
        if raw == choice.value:
            return choice
    names = "|".join(g.value for g in allowed)
    raise ValidationFailed(
        f"group_by must be one of {names}", details={"field": "group_by", "allowed": names}
    )


def _day(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a date written YYYY-MM-DD (a Beijing calendar day)",
            details={"field": name},
        ) from None


def _days(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_EXPIRING_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_EXPIRING_DAYS:
        raise ValidationFailed(
            f"days must be a whole number from 1 to {MAX_EXPIRING_DAYS}", details={"field": "days"}
        )
    return int(raw)


class Statistics:
    def __init__(
        self,
        store: StatsStore,
        clock: Callable[[], datetime],
        *,
        settle: timedelta = timedelta(0),
        on_demand_events: int = ON_DEMAND_EVENTS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settle = settle  # events younger than this wait for the next refresh
        self._on_demand = on_demand_events

    def now(self) -> datetime:
        return self._clock()

    def refresh(
        self,
        *,
        max_events: int | None = None,
        settle: timedelta | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> RefreshReport:
        """Take the events ready past the watermark, a step (one transaction) at a time,
        up to ``max_events`` (all of them by default); ``settle`` overrides how old an
        event must be to be taken (e.g. none, once ingest has stopped)."""
        wait = self._settle if settle is None else settle
        events = vehicles = 0
        last_event_id = 0
        while True:
            now = self._clock()
            limit = STEP_EVENTS if max_events is None else min(STEP_EVENTS, max_events - events)
            if limit <= 0:
                return RefreshReport(events, vehicles, last_event_id, complete=False)
            step = self._store.refresh_step(limit, now - wait if wait else None, now)
            events += step.events
            vehicles += step.vehicles
            last_event_id = step.last_event_id
            if progress is not None:
                progress(events)
            if step.done:
                return RefreshReport(events, vehicles, last_event_id, complete=True)

    def _cutoff(self, now: datetime) -> datetime | None:
        return now - self._settle if self._settle else None

    def _fresh(self) -> bool:
        """Take what waits, if little enough: whether the figures are then up to date."""
        if not self._store.pending(self._cutoff(self._clock())):
            return True
        return self.refresh(max_events=self._on_demand).complete

    def renewals(self, params: Mapping[str, str]) -> RenewalReport:
        group_by = _group_by(params.get("group_by"), tuple(GroupBy), GroupBy.INSURER)
        now = self._clock()
        yesterday = beijing_day(now) - timedelta(days=1)
        asked_first, asked_last = _day(params.get("from"), "from"), _day(params.get("to"), "to")
        if asked_first and asked_last and asked_first > asked_last:
            raise ValidationFailed("from must not be after to", details={"field": "from"})
        last = min(asked_last or yesterday, yesterday)
        first = asked_first or last - timedelta(days=DEFAULT_SPAN_DAYS - 1)
        if (last - first).days >= MAX_SPAN_DAYS:
            raise ValidationFailed(
                f"a period is at most {MAX_SPAN_DAYS} days",
                code="range_too_large",
                details={"max_days": MAX_SPAN_DAYS},
            )
        fresh = self._fresh()
        counts = self._store.renewals(group_by, first, last) if first <= last else []
        rows: dict[str, list[int]] = {}
        for c in counts:
            key = c.key[:7] if group_by is GroupBy.MONTH else c.key
            held = rows.setdefault(key, [0, 0, 0, 0])
            for i, n in enumerate((c.due, c.on_time, c.late, c.unrenewed)):
                held[i] += n
        found = tuple(RenewalRow(k, *v) for k, v in sorted(rows.items()) if v[0])
        return RenewalReport(group_by, first, last, now, not fresh, found)

    def expiring(self, params: Mapping[str, str]) -> ExpiringReport:
        days = _days(params.get("days"))
        now = self._clock()
        first = beijing_day(now) + timedelta(days=1)
        last = first + timedelta(days=days - 1)
        fresh = self._fresh()
        by_day = self._store.unrenewed_by_day(first, last)
        rows = tuple(
            DayCount(d, by_day.get(d, 0)) for d in (first + timedelta(days=i) for i in range(days))
        )
        return ExpiringReport(first, last, now, not fresh, rows)

    def lapses(self, params: Mapping[str, str]) -> LapseReport:
        allowed = (GroupBy.REGION, GroupBy.INSURER)
        group_by = _group_by(params.get("group_by"), allowed, GroupBy.REGION)
        now = self._clock()
        fresh = self._fresh()
        histogram: dict[str, list[tuple[int, int]]] = {}
        for c in self._store.last_covers(group_by, now):
            histogram.setdefault(c.key, []).append((days_lapsed(c.last_end, now), c.vehicles))
        rows = tuple(
            LapseRow(key, sum(n for _, n in counts), weighted_median(counts))
            for key, counts in sorted(histogram.items())
        )
        return LapseReport(group_by, now, not fresh, rows)
