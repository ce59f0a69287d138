"""The synthetic history and the trained model's AUC next to the true-risk ceiling."""

from __future__ import annotations

from datetime import UTC, datetime

from ctplhub.domain.lapse_risk import TRUE_RISK, risk_features
from ctplhub.forecast.training import evaluate, split, train
from ctplhub.services.risk_history import history_events, synthetic_vehicles

NOW = datetime(2026, 12, 1, 4, tzinfo=UTC)


def test_the_history_is_reproducible_and_its_lapses_follow_the_true_risk() -> None:
    first = list(synthetic_vehicles(3000, now=NOW))
    again = list(synthetic_vehicles(3000, now=NOW))
    assert [v.lapsed for v in first] == [v.lapsed for v in again]
    for vehicle in first[:200]:
        assert vehicle.features == risk_features(vehicle.history, vehicle.end)
        assert vehicle.true_risk == TRUE_RISK.risk(vehicle.features)
    mean_risk = sum(v.true_risk for v in first) / len(first)
    lapse_rate = sum(v.lapsed for v in first) / len(first)
    assert abs(mean_risk - lapse_rate) < 0.03  # the draws follow the risk
    assert 0.05 < lapse_rate < 0.3
    assert {v.features.past_gaps for v in first} >= {0, 1, 2}


def test_the_events_tell_the_history_they_were_made_from() -> None:
    vehicle = next(v for v in synthetic_vehicles(50, now=NOW) if len(v.history.policies) >= 3)
    events = history_events(vehicle)
    assert len(events) == len(vehicle.history.policies)
    assert {e["vin"] for e in events} == {vehicle.history.vin}
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "issue" and set(kinds) <= {"issue", "renew"}


def test_the_held_out_auc_is_close_to_the_ceiling_on_a_small_fleet() -> None:
    training, held_out = split(synthetic_vehicles(6000, now=NOW))
    assert {v.index for v in training}.isdisjoint(v.index for v in held_out)
    model = train(training)
    evaluation = evaluate(model, held_out)
    assert evaluation.ceiling_auc > 0.65
    # 6,000 vehicles leave about 250 lapses held out: a sane margin, not the 0.03 goal
    # (the bench and `ctplhub forecast train` show that at 60,000).
    assert evaluation.gap < 0.04
    risks = sorted((model.risk(v.features) for v in training), reverse=True)
    assert risks[len(risks) // 10 - 1] >= model.top_decile >= risks[len(risks) // 10 + 1]
