"""A synthetic history whose true lapse risk is known (issue 12 item 6; docs/forecast.md).

The demo fleet (``demo_fleet.py``) tells each vehicle's *story* chosen by fixed weights,
which benchmarks and tests rely on event for event; it is left alone. This is the fleet's
second mode: the same regions, vehicle profiles, insurers, plates and VINs
(``demo_data.py``), but each vehicle lives several yearly terms, and

1. its past behaviour (gaps, late renewals, switches) comes from a hidden propensity, and
   a third of the owners subscribe to reminders, which are sent as DESIGN §7 says;
2. the features are read back from that history by ``domain.lapse_risk.risk_features``,
   the very function that reads stored histories;
3. whether its last cover lapses is drawn from ``TRUE_RISK`` of those features alone.

So the true risk of every vehicle is known and its ROC AUC is the ceiling a model can
reach. Every vehicle has its own seeded random stream, like the demo fleet's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from ctplhub.domain.instants import BEIJING
from ctplhub.domain.lapse_risk import (
    TRUE_RISK,
    PastPolicy,
    RiskFeatures,
    VehicleHistory,
    risk_features,
)
from ctplhub.services import demo_data as data
from ctplhub.services.demo_fleet import DEMO_INSURERS

_YEAR = timedelta(days=365)
_REMINDER_OFFSETS = (timedelta(days=-30), timedelta(days=-7), timedelta(days=-1))
_LAPSE_OFFSET = timedelta(days=1)
SUBSCRIBED_SHARE = 0.35
_INSURERS = tuple(code for code, _ in DEMO_INSURERS)
_INSURER_WEIGHTS = (34, 24, 16, 14, 12)  # as the demo fleet's: roughly the market shares


@dataclass(frozen=True, slots=True)
class SyntheticVehicle:
    index: int
    history: VehicleHistory  # up to and including the cover ending at ``end``
    end: datetime  # the end whose lapse is drawn
    features: RiskFeatures
    true_risk: float
    lapsed: bool
    profile: data.Profile
    region: data.Region


def synthetic_vehicles(
    count: int, *, now: datetime, seed: int = 11, ends_from: int = -330, ends_until: int = -30
) -> Iterator[SyntheticVehicle]:
    """``count`` vehicles whose last cover ends between ``ends_from`` and ``ends_until``
    days from ``now`` (in the past by default: outcomes known, for training)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(BEIJING).date()
    for index in range(count):
        rng = random.Random(seed * 2**21 + index)
        end_day = today + timedelta(days=rng.randint(ends_from, ends_until))
        end = datetime.combine(end_day, time(), BEIJING)
        yield _vehicle(index, seed, rng, end)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _vehicle(index: int, seed: int, rng: random.Random, end: datetime) -> SyntheticVehicle:
    region = rng.choices(data.REGIONS, weights=data.REGION_WEIGHTS)[0]
    profile = rng.choices(data.PROFILES, weights=data.PROFILE_WEIGHTS)[0]
    careless = rng.gauss(0.0, 1.0) + (0.4 if profile.use_nature == "operating" else 0.0)
    subscribed = rng.random() < SUBSCRIBED_SHARE
    earlier = rng.choices((0, 1, 2, 3, 4), weights=(2, 3, 3, 2, 2))[0]
    # Built backwards from the last cover: each earlier term ends where the next starts,
    # or before it when the owner let the cover lapse for a while.
    insurer = rng.choices(_INSURERS, weights=_INSURER_WEIGHTS)[0]
    start = end - _YEAR
    terms: list[tuple[str, datetime, datetime]] = [(insurer, start, end)]
    gaps: list[bool] = []
    lates: list[bool] = []
    for _ in range(earlier):
        gap = rng.random() < _sigmoid(-2.0 + 0.9 * careless)
        late = not gap and rng.random() < _sigmoid(-1.2 + 0.8 * careless)
        if rng.random() < 0.15 + 0.1 * (careless > 1):
            insurer = rng.choice([c for c in _INSURERS if c != insurer])
        prev_end = start - timedelta(days=rng.randint(5, 120)) if gap else start
        start = prev_end - _YEAR
        terms.append((insurer, start, prev_end))
        gaps.append(gap)
        lates.append(late)
    terms.reverse()
    gaps.reverse()
    lates.reverse()
    policies: list[PastPolicy] = []
    reminded: list[datetime] = []
    for n, (code, begin, finish) in enumerate(terms):
        if n == 0:
            issued = _at(rng, begin - timedelta(days=rng.randint(1, 10)))
        else:
            prior_end = terms[n - 1][2]
            if gaps[n - 1]:
                issued = _at(rng, begin - timedelta(days=rng.randint(0, 3)))
            elif lates[n - 1]:
                issued = _at(rng, prior_end - timedelta(days=rng.randint(1, 6)))
            else:
                issued = _at(rng, prior_end - timedelta(days=rng.randint(8, 40)))
            if subscribed:
                reminded += _reminders_sent(prior_end, issued, gaps[n - 1])
        policies.append(PastPolicy(code, issued, begin, finish))
    history = VehicleHistory(
        vin=data.vin(rng, index, seed, rng.choice(profile.wmis), end.year - len(terms)),
        vehicle_type=profile.vehicle_type,
        use_nature=profile.use_nature,
        region_code=region.region_code,
        policies=tuple(policies),
        reminded_ends=tuple(reminded),
    )
    features = risk_features(history, end)
    risk = TRUE_RISK.risk(features)
    lapsed = rng.random() < risk
    return SyntheticVehicle(index, history, end, features, risk, lapsed, profile, region)


def _at(rng: random.Random, day: datetime) -> datetime:
    """Some second of office hours that day."""
    return day + timedelta(seconds=rng.randint(8 * 3600 + 1800, 18 * 3600))


def _reminders_sent(end: datetime, renewed_at: datetime, gap: bool) -> list[datetime]:
    """One entry per reminder (DESIGN §7: 30, 7, 1 days before, 1 day after a lapse) whose
    due time came before the owner renewed; each is about ``end``."""
    offsets = (*_REMINDER_OFFSETS, _LAPSE_OFFSET) if gap else _REMINDER_OFFSETS
    return [end for offset in offsets if end + offset < renewed_at]


def history_events(vehicle: SyntheticVehicle, *, seed: int = 11) -> list[dict[str, Any]]:
    """The ``issue``/``renew`` events (DESIGN §2.4) of the vehicle's history, oldest
    first, in the demo fleet's wire form: to store a synthetic history and read it back."""
    rng = random.Random(seed * 2**22 + vehicle.index)
    today = vehicle.end.date()
    large = vehicle.profile.vehicle_type != "passenger_small"
    plate = data.plate(vehicle.region, vehicle.index, seed, nev=False, large_vehicle=large)
    owner = data.owner(rng, vehicle.profile, vehicle.region, today)
    events: list[dict[str, Any]] = []
    prior: dict[str, Any] | None = None
    for n, policy in enumerate(vehicle.history.policies):
        number = data.POLICY_NO_FORMATS[policy.insurer_code].format(
            year=policy.issued_at.year, region=vehicle.region.region_code, seq=vehicle.index * 8 + n
        )
        renew = prior is not None and prior["insurer_code"] == policy.insurer_code
        event: dict[str, Any] = {
            "insurer_code": policy.insurer_code,
            "policy_no": number,
            "event_type": "renew" if renew else "issue",
            "version": 1,
            "occurred_at": _stamp(policy.issued_at),
            "plate": plate,
            "vin": vehicle.history.vin,
            "vehicle_type": vehicle.history.vehicle_type,
            "use_nature": vehicle.history.use_nature,
            **owner,
            "coverage_start": _stamp(policy.start),
            "coverage_end": _stamp(policy.end),
            "premium": f"{vehicle.profile.base_premium:.2f}",
            "region_code": vehicle.history.region_code,
        }
        if renew and prior is not None:
            event["prior_policy_no"] = prior["policy_no"]
        events.append(event)
        prior = event
    return events


def _stamp(at: datetime) -> str:
    return at.astimezone(BEIJING).isoformat(timespec="seconds")
