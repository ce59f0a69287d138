"""Lapse risk (issue 12 item 6; docs/forecast.md): the features of a vehicle's history,
their numeric encoding, and a logistic scorer over that encoding.

Pure functions of a :class:`VehicleHistory`: no clock, no storage, no numerical library.
The same scorer serves two purposes:

- :data:`TRUE_RISK` is the *documented* risk function the synthetic history draws each
  vehicle's lapse from (``services/risk_history.py``), so the best any model can do on
  that history is known (its ROC AUC is the ceiling);
- a :class:`LapseModel` read from JSON is what scikit-learn learnt (``forecast/``), and
  ranks real vehicles without scikit-learn on the serving path.

Only the vehicle's own history enters: no owner attribute (name, age, sex, identity
number, address) is ever a feature (docs/forecast.md, "Fairness").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

LATE_WINDOW = timedelta(days=7)
"""A renewal bought this close to the old cover's end (or later, backdated to it) is late."""
COUNT_CAP = 4
"""Counts are capped: a fifth gap says little more than a fourth, and a cap keeps one
vehicle with a long history from dominating a linear score."""
USE_LEVELS = ("operating", "non_operating")  # baseline: family
TYPE_LEVELS = ("truck", "passenger_large")  # baseline: passenger_small
PROVINCES = ("11", "31", "32", "33", "35", "37", "42", "43", "44", "50", "51", "61")
"""Provinces (first two digits of the region code) with a column of their own; any other
province scores like the baseline (no column)."""
COUNTS = ("late_renewals", "past_gaps", "insurer_switches", "reminders_sent", "reminders_ignored")
FEATURE_NAMES: tuple[str, ...] = (
    *COUNTS,
    *(f"use:{u}" for u in USE_LEVELS),
    *(f"type:{t}" for t in TYPE_LEVELS),
    *(f"province:{p}" for p in PROVINCES),
)


@dataclass(frozen=True, slots=True)
class PastPolicy:
    """One policy of the vehicle (a cancelled one never counts: it never covered)."""

    insurer_code: str
    issued_at: datetime  # when its first version occurred
    start: datetime
    end: datetime  # the effective end: a surrender's cut, else coverage_end


@dataclass(frozen=True, slots=True)
class VehicleHistory:
    vin: str
    vehicle_type: str
    use_nature: str
    region_code: str
    policies: tuple[PastPolicy, ...]
    reminded_ends: tuple[datetime, ...] = ()
    """The cover end each *sent* reminder was about (one entry per reminder sent)."""


@dataclass(frozen=True, slots=True)
class RiskFeatures:
    late_renewals: int
    past_gaps: int
    insurer_switches: int
    reminders_sent: int
    reminders_ignored: int
    use_nature: str
    vehicle_type: str
    region_code: str

    def encoded(self) -> tuple[float, ...]:
        """The vector in :data:`FEATURE_NAMES` order: capped counts, then one-hot levels."""
        counts = [float(min(getattr(self, name), COUNT_CAP)) for name in COUNTS]
        province = self.region_code[:2]
        return (
            *counts,
            *(1.0 if self.use_nature == u else 0.0 for u in USE_LEVELS),
            *(1.0 if self.vehicle_type == t else 0.0 for t in TYPE_LEVELS),
            *(1.0 if province == p else 0.0 for p in PROVINCES),
        )


def risk_features(history: VehicleHistory, end: datetime) -> RiskFeatures:
    """The features for the question "will the cover ending at ``end`` lapse?".

    Only what was known by then counts: the renewals between policies that ended by
    ``end`` (a *gap* when the next cover started after the old one ended, *late* when it
    did not but was bought within :data:`LATE_WINDOW` of the end, a *switch* when the
    insurer changed), and the reminders sent about earlier ends (*ignored* when that end
    was followed by a gap all the same).
    """
    terms = sorted((p for p in history.policies if p.end <= end), key=lambda p: (p.start, p.end))
    late = gaps = switches = 0
    gap_ends: set[datetime] = set()
    for before, after in pairwise(terms):
        if after.start > before.end:
            gaps += 1
            gap_ends.add(before.end)
        elif after.issued_at >= before.end - LATE_WINDOW:
            late += 1
        if after.insurer_code != before.insurer_code:
            switches += 1
    earlier = [e for e in history.reminded_ends if e < end]
    return RiskFeatures(
        late_renewals=late,
        past_gaps=gaps,
        insurer_switches=switches,
        reminders_sent=len(earlier),
        reminders_ignored=len({e for e in earlier if e in gap_ends}),
        use_nature=history.use_nature,
        vehicle_type=history.vehicle_type,
        region_code=history.region_code,
    )


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class InvalidModel(ValueError):
    """A model file that is not a lapse model of these features."""


@dataclass(frozen=True, slots=True)
class LapseModel:
    """``P(lapse) = 1 / (1 + exp(-(intercept + Σ weight·feature)))`` over
    :data:`FEATURE_NAMES`; ``top_decile`` is the score from which a vehicle is in the
    riskiest tenth (it gets the early reminder)."""

    intercept: float
    weights: tuple[float, ...]
    top_decile: float = 1.0
    about: Mapping[str, object] = field(default_factory=dict)  # how it was trained, metrics

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURE_NAMES):
            raise InvalidModel(f"a model needs {len(FEATURE_NAMES)} weights")
        if not all(math.isfinite(v) for v in (self.intercept, *self.weights, self.top_decile)):
            raise InvalidModel("model numbers must be finite")

    def risk(self, features: RiskFeatures) -> float:
        x = features.encoded()
        return _sigmoid(self.intercept + sum(w * v for w, v in zip(self.weights, x, strict=True)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": "ctplhub.lapse_model/1",
                "features": list(FEATURE_NAMES),
                "intercept": self.intercept,
                "weights": dict(zip(FEATURE_NAMES, self.weights, strict=True)),
                "top_decile": self.top_decile,
                "about": dict(self.about),
            },
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> LapseModel:
        """Data only (no pickle): numbers checked, the feature list must be ours exactly."""
        try:
            doc = json.loads(text)
            if doc.get("kind") != "ctplhub.lapse_model/1":
                raise InvalidModel("not a ctplhub lapse model")
            if tuple(doc["features"]) != FEATURE_NAMES:
                raise InvalidModel("the model's features are not this version's")
            weights = tuple(float(doc["weights"][name]) for name in FEATURE_NAMES)
            about = doc.get("about", {})
            return cls(
                float(doc["intercept"]),
                weights,
                float(doc["top_decile"]),
                about if isinstance(about, dict) else {},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as problem:
            if isinstance(problem, InvalidModel):
                raise
            raise InvalidModel(f"unreadable lapse model: {problem}") from None


def _weights(named: Mapping[str, float]) -> tuple[float, ...]:
    return tuple(named.get(name, 0.0) for name in FEATURE_NAMES)


TRUE_RISK = LapseModel(
    intercept=-2.6,
    weights=_weights(
        {
            "late_renewals": 0.45,
            "past_gaps": 0.85,
            "insurer_switches": 0.25,
            "reminders_sent": -0.2,  # reminded owners renew more often ...
            "reminders_ignored": 0.6,  # ... unless they ignored reminders before
            "use:operating": 0.6,  # commercial vehicles are laid up or sold more
            "use:non_operating": 0.2,
            "type:truck": 0.4,
            "type:passenger_large": 0.25,
            # Synthetic region effects, standing in for local enforcement intensity and
            # the share of vehicles registered away from where they run (docs/forecast.md).
            "province:11": -0.35,
            "province:31": -0.4,
            "province:32": -0.15,
            "province:33": -0.2,
            "province:37": 0.1,
            "province:42": 0.1,
            "province:43": 0.2,
            "province:44": 0.25,
            "province:50": 0.3,
            "province:51": 0.2,
            "province:61": 0.35,
        }
    ),
    about={"source": "the documented risk function of the synthetic history"},
)
"""The risk function the synthetic history draws lapses from (docs/forecast.md)."""


def top_decile_threshold(scores: Iterable[float]) -> float:
    """The lowest score of the riskiest tenth (at least one vehicle); 1.0 for none."""
    ordered = sorted(scores, reverse=True)
    if not ordered:
        return 1.0
    return ordered[max(1, math.ceil(len(ordered) / 10)) - 1]
