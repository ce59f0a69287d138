"""Use case: rank the vehicles about to expire by their risk of lapsing (issue 12 item 6).

Histories come through the :class:`VehicleHistories` port; the score is the JSON lapse
model's (``domain.lapse_risk.LapseModel``), so serving needs no numerical library. The
same scores order the reminders and pick the vehicles that get the early reminder
(``services/reminders.py``), and regulators see them summed by region.

A vehicle is *expiring* when its latest cover ends in ``(at, at + days]`` and nothing of
it ends later (not renewed yet). Features are read as of ``at``: reminders about the
expiring cover itself are not counted (``risk_features``), so the ranking does not move
as this run's own reminders go out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import fmean
from typing import Protocol

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.identifiers import mask_vin
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


class LapseForecast:
    def __init__(
        self, histories: VehicleHistories, model: LapseModel, clock: Callable[[], datetime]
    ) -> None:
        self._histories = histories
        self.model = model
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    @property
    def top_decile(self) -> float:
        return self.model.top_decile

    def rank(self, at: datetime | None = None, days: int = 30) -> list[RankedVehicle]:
        """The vehicles expiring within ``days`` of ``at``, riskiest first (ties: the
        earlier end first, then the VIN, so the order is stable)."""
        at = at or self._clock()
        if not 1 <= days <= MAX_DAYS:
            raise ValidationFailed(
                f"days must be 1-{MAX_DAYS}",
                details=[{"field": "days", "problem": f"between 1 and {MAX_DAYS}"}],
            )
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
        if group_by not in GROUPS:
            raise ValidationFailed(
                f"group_by must be one of {', '.join(GROUPS)}",
                details=[{"field": "group_by", "problem": "one of " + ", ".join(GROUPS)}],
            )
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

    def risks(self, vins: Sequence[str], at: datetime) -> dict[str, float]:
        """Each vehicle's risk of lapsing at the end of its latest cover (reminders)."""
        risks = {}
        for vin, history in self._histories.histories(vins, at).items():
            if history.policies:
                end = max(p.end for p in history.policies)
                risks[vin] = self.model.risk(risk_features(history, end))
        return risks


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
