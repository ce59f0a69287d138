"""The lapse forecast on SQLite and PostgreSQL (issue 12 item 6): features read back from
stored history equal those of the history that was stored, the expiring vehicles are
ranked by risk, and the ranking orders reminders and adds the early one for the riskiest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.domain.lapse_risk import risk_features
from ctplhub.services.demo_fleet import DEMO_INSURERS
from ctplhub.services.risk_history import synthetic_vehicles
from ctplhub.store.repositories.vehicle_histories import SqlVehicleHistories
from ctplhub.store.tables import reminders
from forecast_fixtures import store
from helpers import VIN, VIN_B, Clock, InsurerAccount, event

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 20, 2, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def insurers(make_insurer: Callable[[str], InsurerAccount]) -> dict[str, InsurerAccount]:
    return {code: make_insurer(code) for code, _ in DEMO_INSURERS}


def test_features_read_from_stored_history_equal_the_generated_ones(
    container: Container, clock: Clock, insurers: dict[str, InsurerAccount]
) -> None:
    clock.now = NOW
    fleet = list(synthetic_vehicles(60, now=NOW))
    chosen = [v for v in fleet if v.history.reminded_ends][:3]
    chosen += [v for v in fleet if v.features.past_gaps and v not in chosen][:2]
    chosen += [v for v in fleet if v.features.late_renewals and v not in chosen][:2]
    store(chosen, insurers, container)

    found = SqlVehicleHistories(container.engine).histories([v.history.vin for v in chosen], NOW)

    assert set(found) == {v.history.vin for v in chosen}
    for vehicle in chosen:
        assert risk_features(found[vehicle.history.vin], vehicle.end) == vehicle.features
    # Reminders sent after the instant asked about are not yet history.
    before = datetime(2000, 1, 1, tzinfo=UTC)
    assert SqlVehicleHistories(container.engine).histories([chosen[0].history.vin], before) == {}


def test_expiring_vehicles_are_ranked_riskiest_first_and_summed_by_region(
    container: Container, clock: Clock, insurers: dict[str, InsurerAccount]
) -> None:
    clock.now = NOW
    soon = list(synthetic_vehicles(12, now=NOW, seed=5, ends_from=2, ends_until=28))
    later = list(synthetic_vehicles(2, now=NOW, seed=6, ends_from=40, ends_until=60))
    store(soon + later, insurers, container)

    ranked = container.forecast.rank(NOW, 30)

    model = container.forecast.model
    expected = sorted(soon, key=lambda v: (-model.risk(v.features), v.end, v.history.vin))
    assert [r.vin_masked[:11] for r in ranked] == [v.history.vin[:11] for v in expected]
    assert [r.risk for r in ranked] == [model.risk(v.features) for v in expected]
    assert all(r.top_decile == (r.risk >= model.top_decile) for r in ranked)
    groups = container.forecast.grouped("region", NOW, 30)
    assert sum(g.vehicles for g in groups) == len(soon)
    by_key = {g.key: g for g in groups}
    for key, group in by_key.items():
        members = [v for v in soon if v.history.region_code == key]
        assert group.vehicles == len(members)
        assert group.expected_lapses == pytest.approx(
            sum(model.risk(v.features) for v in members), abs=0.01
        )


# Two vehicles whose covers end at the same instant: A lapsed three times before, is an
# operating truck in Shaanxi (the riskiest tenth); B is a family car with one policy.
END = datetime(2026, 3, 1, tzinfo=BEIJING)


def _a_events() -> list[dict[str, Any]]:
    starts = [
        datetime(2021, 12, 1, tzinfo=BEIJING),
        datetime(2022, 12, 31, tzinfo=BEIJING),
        datetime(2024, 1, 30, tzinfo=BEIJING),
        datetime(2025, 3, 1, tzinfo=BEIJING),
    ]
    return [
        event(
            policy_no=f"PDAA20256101000000{n}",
            plate="陕A·23456",
            vin=VIN,
            vehicle_type="truck",
            use_nature="operating",
            region_code="610113",
            occurred_at=(start - timedelta(days=1)).replace(hour=10).isoformat(),
            coverage_start=start.isoformat(),
            coverage_end=start.replace(year=start.year + 1).isoformat(),
        )
        for n, start in enumerate(starts)
    ]


@pytest.fixture
def two_vehicles(client: TestClient, clock: Clock, picc: InsurerAccount) -> None:
    clock.now = datetime(2026, 1, 1, 10, tzinfo=BEIJING)
    for e in _a_events():
        picc.api.report_event(e)
    picc.api.report_event(event(policy_no="PDAA2025320500000009", plate="苏E·54321", vin=VIN_B))
    # B subscribes first, so without the forecast its rows would come first.
    for plate, vin in (("苏E54321", VIN_B), ("陕A23456", VIN)):
        answer = client.post(
            "/v1/subscriptions",
            json={"plate": plate, "vin_last6": vin[-6:], "channel": "email", "address": "o@x.cn"},
        )
        assert answer.status_code == 201, answer.text


def rows(container: Container) -> list[tuple[str, str, str]]:
    r = reminders.c
    with container.engine.connect() as conn:
        found = conn.execute(select(r.vin, r.rule, r.state).order_by(r.id))
        return [(vin, rule, state) for vin, rule, state in found]


@pytest.mark.usefixtures("two_vehicles")
def test_the_riskiest_tenth_get_an_early_reminder(container: Container) -> None:
    risks = container.forecast.risks([VIN, VIN_B], END - timedelta(days=60))
    assert risks[VIN] >= container.forecast.top_decile > risks[VIN_B]

    at = END - timedelta(days=40) + timedelta(hours=10)
    container.reminders.decide(at)

    assert rows(container) == [(VIN, "early_risk_45d", "pending")]
    [message] = container.outbox.claim(at, 10, "w1", LEASE)
    assert (message.kind, message.rule_days, message.covered_until) == ("early_risk_45d", 45, END)


@pytest.mark.usefixtures("two_vehicles")
def test_reminders_due_together_go_riskiest_first(container: Container) -> None:
    at = END - timedelta(days=30) + timedelta(hours=10)

    container.reminders.decide(at)

    assert rows(container) == [
        (VIN, "before_30d", "pending"),
        (VIN_B, "before_30d", "pending"),
        (VIN, "early_risk_45d", "skipped"),  # overtaken by the more urgent rule
    ]
    claimed = container.outbox.claim(at, 10, "w1", LEASE)
    assert [m.vin_masked[:11] for m in claimed] == [VIN[:11], VIN_B[:11]]
