"""Use case: rank the vehicles about to expire by their risk of lapsing (issue 12 item 6).

Histories come through the :class:`VehicleHistories` port; the score is the JSON lapse
model's (``domain.lapse_risk.LapseModel``), so serving needs no numerical library. The
same scores order the reminders and pick the vehicles that get the early reminder
(``services/reminders.py``), and regulators see them summed by region.

A vehicle is *expiring* when its latest cover ends in ``(at, at + days]`` and nothing of
it ends later (not renewed yet). Features are read as of ``at``: reminders about the
expiring cover itself are not counted (``risk_features``), so the ranking does not move
as this run's own reminders go out.

Regulators' totals are a **stored daily aggregate** (``ForecastStore``; migration 0021):
once a Beijing day, at that day's 00:00 (Beijing), the vehicles expiring within
``MAX_DAYS`` are ranked once and their sums stored by group and by the day of the window
their cover ends in (the 1st to the 90th), so that any ``days`` of that day's forecast is
a sum of stored rows: exactly :meth:`grouped` at that instant. ``ctplhub worker`` stores
the day's forecast soon after midnight, ``ctplhub forecast refresh`` on demand, and a
request that finds the day's forecast missing computes and stores it itself, so the
answer never waits for a worker (docs/DECISIONS.md, "Lapse forecast, stored daily").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from statistics import fmean
from typing import Protocol

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.identifiers import mask_vin
from ctplhub.domain.instants import BEIJING
from ctplhub.domain.lapse_risk import LapseModel, RiskFeatures, VehicleHistory, risk_features

MAX_DAYS = 90
GROUPS = ("region", "province", "vehicle_type", "use_nature")


class VehicleHistories(Protocol):
    def expiring(self, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
        """(vin, end) of the vehicles whose latest cover ends in ``(since, until]``."""
        ...

    def histories(self, vins: Sequence[str], at: datetime) -> dict[str, VehicleHistory]:
        """Each vehicle's policies and the reminders sent to it by ``at``."""
        ...


@dataclass(frozen=True, slots=True)
class RankedVehicle:
    vin_masked: str
    covered_until: datetime
    risk: float
    top_decile: bool  # the model's riskiest tenth: an early reminder is due
    features: RiskFeatures


@dataclass(frozen=True, slots=True)
class RiskGroup:
    """One row of the regulators' view: the expiring vehicles of a group."""

    key: str
    vehicles: int
    expected_lapses: float  # the sum of their risks
    mean_risk: float
    top_decile: int


@dataclass(frozen=True, slots=True)
class StoredTotal:
    """One stored row: the vehicles of a group whose cover ends on ``day`` of the window
    (``as_of + (day - 1) days``, ``as_of + day days``], with the sum of their risks."""

    group_by: str
    key: str
    day: int  # 1 .. MAX_DAYS
    vehicles: int
    risk_sum: float
    top_decile: int


@dataclass(frozen=True, slots=True)
class ForecastRun:
    as_of: datetime  # the instant forecast: a Beijing day's 00:00
    computed_at: datetime
    vehicles: int  # expiring within MAX_DAYS


@dataclass(frozen=True, slots=True)
class DailyForecast:
    """A grouped forecast read from the stored aggregate (or computed at its instant)."""

    as_of: datetime
    computed_at: datetime
    rows: list[RiskGroup]


class ForecastStore(Protocol):
    def run(self, as_of: datetime) -> ForecastRun | None:
        """The stored forecast at ``as_of``, if any."""
        ...

    def put(
        self,
        run: ForecastRun,
        totals: Sequence[StoredTotal],
        *,
        replace: bool,
        keep_before: datetime,
    ) -> bool:
        """Store a day's forecast in one transaction (its run row and its totals), and
        drop forecasts older than ``keep_before``. Without ``replace``, False (storing
        nothing) when one is stored at ``run.as_of`` already (another worker's)."""
        ...

    def totals(
        self, as_of: datetime, group_by: str, days: int
    ) -> list[tuple[str, int, float, int]]:
        """(key, vehicles, risk sum, top decile) of each group, summed over days 1..``days``."""
        ...


KEEP_DAYS = 8


def forecast_instant(now: datetime) -> datetime:
    """The instant of the day's stored forecast: 00:00 Beijing time of ``now``'s day."""
    return datetime.combine(now.astimezone(BEIJING).date(), time(0), tzinfo=BEIJING)


def window_day(as_of: datetime, end: datetime) -> int:
    """The day of the window (1-based) in which ``end`` falls: ``(as_of + (d-1) days,
    as_of + d days]``; so ``end <= as_of + n days`` exactly when the day is at most n."""
    delta = end - as_of
    whole = delta // timedelta(days=1)
    return whole + (1 if delta - timedelta(days=whole) > timedelta(0) else 0)


class LapseForecast:
    def __init__(
        self,
        histories: VehicleHistories,
        model: LapseModel,
        clock: Callable[[], datetime],
        store: ForecastStore | None = None,
    ) -> None:
        self._histories = histories
        self.model = model
        self._clock = clock
        self._store = store

    def now(self) -> datetime:
        return self._clock()

    @property
    def top_decile(self) -> float:
        return self.model.top_decile

    def rank(self, at: datetime | None = None, days: int = 30) -> list[RankedVehicle]:
        """The vehicles expiring within ``days`` of ``at``, riskiest first (ties: the
        earlier end first, then the VIN, so the order is stable)."""
        at = at or self._clock()
        _check_days(days)
        ends = dict(self._histories.expiring(at, at + timedelta(days=days)))
        found = self._histories.histories(sorted(ends), at)
        ranked = []
        for vin, end in ends.items():
            history = found.get(vin)
            if history is None:
                continue
            features = risk_features(history, end)
            risk = self.model.risk(features)
            ranked.append((vin, end, risk, features))
        ranked.sort(key=lambda r: (-r[2], r[1], r[0]))
        return [
            RankedVehicle(mask_vin(vin), end, risk, risk >= self.model.top_decile, features)
            for vin, end, risk, features in ranked
        ]

    def grouped(
        self, group_by: str = "region", at: datetime | None = None, days: int = 30
    ) -> list[RiskGroup]:
        """:meth:`rank` summed by ``group_by``, the most expected lapses first."""
        _check_group(group_by)
        groups: dict[str, list[RankedVehicle]] = {}
        for vehicle in self.rank(at, days):
            groups.setdefault(_key(vehicle.features, group_by), []).append(vehicle)
        rows = [
            RiskGroup(
                key,
                len(members),
                round(sum(m.risk for m in members), 2),
                round(fmean(m.risk for m in members), 4),
                sum(m.top_decile for m in members),
            )
            for key, members in groups.items()
        ]
        rows.sort(key=lambda r: (-r.expected_lapses, r.key))
        return rows

    # -- the stored daily aggregate ------------------------------------------------

    def refresh(self, now: datetime | None = None, *, replace: bool = True) -> ForecastRun:
        """Rank the vehicles expiring within ``MAX_DAYS`` of the day's instant (the day
        of ``now``) once and store their sums by group and window day; returns the run
        stored (without ``replace``, the one already stored if another process won)."""
        assert self._store is not None, "no forecast store wired"
        as_of = forecast_instant(now or self._clock())
        ranked = self.rank(as_of, MAX_DAYS)
        sums: dict[tuple[str, str, int], list[float]] = {}
        for vehicle in ranked:
            day = window_day(as_of, vehicle.covered_until)
            for group_by in GROUPS:
                cell = sums.setdefault(
                    (group_by, _key(vehicle.features, group_by), day), [0, 0.0, 0]
                )
                cell[0] += 1
                cell[1] += vehicle.risk
                cell[2] += vehicle.top_decile
        totals = [
            StoredTotal(group_by, key, day, int(v), s, int(t))
            for (group_by, key, day), (v, s, t) in sorted(sums.items())
        ]
        run = ForecastRun(as_of, self._clock(), len(ranked))
        keep_before = as_of - timedelta(days=KEEP_DAYS)
        if not self._store.put(run, totals, replace=replace, keep_before=keep_before):
            stored = self._store.run(as_of)
            assert stored is not None  # another process's, committed before ours failed
            return stored
        return run

    def refresh_if_due(self, now: datetime) -> ForecastRun | None:
        """The day's forecast stored when it is not yet (the worker's minute pass); the
        run stored, or None when it was there already."""
        assert self._store is not None, "no forecast store wired"
        if self._store.run(forecast_instant(now)) is not None:
            return None
        return self.refresh(now, replace=False)

    def daily(self, group_by: str = "region", days: int = 30) -> DailyForecast:
        """Today's stored forecast summed by ``group_by`` over ``days``; computed and
        stored first when today's is missing (a fresh install, no worker running)."""
        _check_group(group_by)
        _check_days(days)
        assert self._store is not None, "no forecast store wired"
        as_of = forecast_instant(self._clock())
        run = self._store.run(as_of) or self.refresh(as_of, replace=False)
        return DailyForecast(run.as_of, run.computed_at, self._stored_rows(run, group_by, days))

    def at(self, at: datetime, group_by: str = "region", days: int = 30) -> DailyForecast:
        """The forecast at an instant of the caller's: read from the store when a day's
        forecast was stored at exactly that instant, else computed now (not stored)."""
        _check_group(group_by)
        _check_days(days)
        run = self._store.run(at) if self._store is not None else None
        if run is not None:
            return DailyForecast(run.as_of, run.computed_at, self._stored_rows(run, group_by, days))
        return DailyForecast(at, self._clock(), self.grouped(group_by, at, days))

    def _stored_rows(self, run: ForecastRun, group_by: str, days: int) -> list[RiskGroup]:
        assert self._store is not None
        rows = [
            RiskGroup(key, vehicles, round(risk_sum, 2), round(risk_sum / vehicles, 4), top)
            for key, vehicles, risk_sum, top in self._store.totals(run.as_of, group_by, days)
            if vehicles
        ]
        rows.sort(key=lambda r: (-r.expected_lapses, r.key))
        return rows

    def risks(self, vins: Sequence[str], at: datetime) -> dict[str, float]:
        """Each vehicle's risk of lapsing at the end of its latest cover (reminders)."""
        risks = {}
        for vin, history in self._histories.histories(vins, at).items():
            if history.policies:
                end = max(p.end for p in history.policies)
                risks[vin] = self.model.risk(risk_features(history, end))
        return risks


def _check_group(group_by: str) -> None:
    if group_by not in GROUPS:
        raise ValidationFailed(
            f"group_by must be one of {', '.join(GROUPS)}",
            details=[{"field": "group_by", "problem": "one of " + ", ".join(GROUPS)}],
        )


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(
            f"days must be 1-{MAX_DAYS}",
            details=[{"field": "days", "problem": f"between 1 and {MAX_DAYS}"}],
        )


def _key(features: RiskFeatures, group_by: str) -> str:
    if group_by == "province":
        return features.region_code[:2]
    value = getattr(features, "region_code" if group_by == "region" else group_by)
    return str(value)


CSV_COLUMNS = ("key", "vehicles", "expected_lapses", "mean_risk", "top_decile")


def groups_csv(rows: Sequence[RiskGroup]) -> str:
    """The grouped forecast as UTF-8 CSV with a header row (the API's and the page's)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.key,
                row.vehicles,
                f"{row.expected_lapses:.2f}",
                f"{row.mean_risk:.4f}",
                row.top_decile,
            )
        )
    return buffer.getvalue()
