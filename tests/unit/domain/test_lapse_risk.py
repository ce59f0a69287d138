"""Lapse-risk features, their encoding and the logistic scorer (domain/lapse_risk.py)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest

from ctplhub.domain.instants import BEIJING
from ctplhub.domain.lapse_risk import (
    COUNT_CAP,
    FEATURE_NAMES,
    TRUE_RISK,
    InvalidModel,
    LapseModel,
    PastPolicy,
    RiskFeatures,
    VehicleHistory,
    risk_features,
    top_decile_threshold,
)

YEAR = timedelta(days=365)
E0 = datetime(2023, 3, 1, tzinfo=BEIJING)


def policy(code: str, start: datetime, issued_days_before_start: int = 20) -> PastPolicy:
    return PastPolicy(code, start - timedelta(days=issued_days_before_start), start, start + YEAR)


def history(*policies: PastPolicy, reminded: tuple[datetime, ...] = ()) -> VehicleHistory:
    return VehicleHistory(
        "LSVAU218XN2183294", "passenger_small", "family", "320500", policies, reminded
    )


def test_a_gap_a_late_renewal_and_a_switch_are_counted() -> None:
    first = policy("PICC", E0)
    late = policy("PICC", first.end, issued_days_before_start=3)  # bought 3 days before
    after_gap = policy("CPIC", late.end + timedelta(days=40), issued_days_before_start=1)
    features = risk_features(history(first, late, after_gap), after_gap.end)
    assert (features.late_renewals, features.past_gaps, features.insurer_switches) == (1, 1, 1)


def test_an_on_time_renewal_at_the_same_insurer_counts_nothing() -> None:
    first = policy("PICC", E0)
    second = policy("PICC", first.end, issued_days_before_start=20)
    features = risk_features(history(first, second), second.end)
    assert (features.late_renewals, features.past_gaps, features.insurer_switches) == (0, 0, 0)


def test_only_what_ended_by_the_question_counts() -> None:
    first = policy("PICC", E0)
    second = policy("CPIC", first.end + timedelta(days=10))
    # Asking about the first cover's end: the later gap and switch are the future.
    features = risk_features(history(first, second), first.end)
    assert (features.past_gaps, features.insurer_switches) == (0, 0)


def test_reminders_ignored_are_those_about_an_end_followed_by_a_gap() -> None:
    first = policy("PICC", E0)
    second = policy("PICC", first.end + timedelta(days=30))
    third = policy("PICC", second.end)
    reminded = (first.end, first.end, second.end, third.end)  # the last: the cover asked about
    features = risk_features(history(first, second, third, reminded=reminded), third.end)
    assert features.reminders_sent == 3
    assert features.reminders_ignored == 1  # one distinct end was reminded and still lapsed


def test_encoding_caps_counts_and_one_hot_encodes_levels() -> None:
    features = RiskFeatures(9, 0, 1, 0, 0, "operating", "truck", "610113")
    vector = dict(zip(FEATURE_NAMES, features.encoded(), strict=True))
    assert vector["late_renewals"] == COUNT_CAP
    assert vector["use:operating"] == vector["type:truck"] == vector["province:61"] == 1.0
    assert vector["use:non_operating"] == vector["province:11"] == 0.0
    unknown = RiskFeatures(0, 0, 0, 0, 0, "family", "passenger_small", "990000")
    assert set(unknown.encoded()) == {0.0}  # the baseline: only the intercept


def test_the_true_risk_is_the_documented_logistic_function() -> None:
    features = RiskFeatures(1, 2, 0, 1, 1, "operating", "passenger_small", "440300")
    logit = -2.6 + 0.45 * 1 + 0.85 * 2 - 0.2 * 1 + 0.6 * 1 + 0.6 + 0.25
    assert TRUE_RISK.risk(features) == pytest.approx(1 / (1 + math.exp(-logit)))


def test_every_history_feature_raises_or_lowers_the_true_risk_as_documented() -> None:
    base = RiskFeatures(0, 0, 0, 0, 0, "family", "passenger_small", "320500")
    for name in ("late_renewals", "past_gaps", "insurer_switches", "reminders_ignored"):
        more = RiskFeatures(**{**_fields(base), name: 1})
        assert TRUE_RISK.risk(more) > TRUE_RISK.risk(base), name
    reminded = RiskFeatures(**{**_fields(base), "reminders_sent": 1})
    assert TRUE_RISK.risk(reminded) < TRUE_RISK.risk(base)


def _fields(features: RiskFeatures) -> dict[str, object]:
    return {name: getattr(features, name) for name in RiskFeatures.__slots__}


def test_a_model_round_trips_through_json_and_a_foreign_one_is_refused() -> None:
    model = LapseModel(-1.5, tuple(float(n) / 10 for n in range(len(FEATURE_NAMES))), 0.3)
    again = LapseModel.from_json(model.to_json())
    assert (again.intercept, again.weights, again.top_decile) == (-1.5, model.weights, 0.3)
    doc = json.loads(model.to_json())
    doc["features"] = doc["features"][:-1]
    with pytest.raises(InvalidModel):
        LapseModel.from_json(json.dumps(doc))
    with pytest.raises(InvalidModel):
        LapseModel.from_json('{"kind": "ctplhub.lapse_model/1", "features": 3}')
    with pytest.raises(InvalidModel):
        LapseModel(float("nan"), model.weights)


def test_the_top_decile_threshold_is_the_tenth_riskiest_score() -> None:
    assert top_decile_threshold([n / 100 for n in range(100)]) == 0.9
    assert top_decile_threshold([0.2, 0.1]) == 0.2
    assert top_decile_threshold([]) == 1.0
