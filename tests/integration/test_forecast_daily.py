"""The lapse forecast's stored daily aggregate (issue 12; migration 0021), on SQLite and
PostgreSQL: the stored sums are the per-request computation at the day's instant for
every grouping and window; the API and the page read the stored day (a fresh install
computes and stores it on the first request); the worker's pass and ``ctplhub forecast
refresh`` store it, once a day, keeping a week."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app
from ctplhub.services.demo_fleet import DEMO_INSURERS
from ctplhub.services.forecast import GROUPS, forecast_instant, window_day
from ctplhub.services.risk_history import synthetic_vehicles
from ctplhub.store.schema import alembic_config, migrate
from ctplhub.store.tables import forecast_runs, forecast_totals
from forecast_fixtures import store
from helpers import Clock, InsurerAccount, bearer_headers

NOW = datetime(2026, 11, 20, 2, tzinfo=UTC)  # 10:00 Beijing
TODAY = forecast_instant(NOW)  # 2026-11-20T00:00+08:00


@pytest.fixture
def insurers(
    make_insurer: Callable[[str], InsurerAccount], container: Container, clock: Clock
) -> dict[str, InsurerAccount]:
    clock.now = NOW
    return {code: make_insurer(code) for code, _ in DEMO_INSURERS}


@pytest.fixture
def fleet(insurers: dict[str, InsurerAccount], container: Container) -> int:
    """Vehicles whose cover ends 1-89 days from now, spread over the whole window."""
    vehicles = list(synthetic_vehicles(24, now=NOW, seed=5, ends_from=1, ends_until=89))
    store(vehicles, insurers, container)
    return len(vehicles)


def runs(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(forecast_runs)).scalar_one())


def test_window_days_split_the_window_exactly() -> None:
    day = timedelta(days=1)
    assert window_day(TODAY, TODAY + timedelta(seconds=1)) == 1
    assert window_day(TODAY, TODAY + day) == 1
    assert window_day(TODAY, TODAY + day + timedelta(microseconds=1)) == 2
    assert window_day(TODAY, TODAY + 90 * day) == 90
    assert TODAY.isoformat() == "2026-11-20T00:00:00+08:00"


@pytest.mark.usefixtures("fleet")
def test_the_stored_sums_are_the_computed_ones_for_every_group_and_window(
    container: Container,
) -> None:
    forecast = container.forecast
    run = forecast.refresh()
    assert run.as_of == TODAY and run.vehicles == len(forecast.rank(TODAY, 90)) > 0
    for group_by in GROUPS:
        for days in (1, 7, 30, 45, 89, 90):
            stored = forecast.daily(group_by, days)
            computed = forecast.grouped(group_by, TODAY, days)
            assert stored.as_of == TODAY
            assert [(g.key, g.vehicles, g.top_decile) for g in stored.rows] == [
                (g.key, g.vehicles, g.top_decile) for g in computed
            ], (group_by, days)
            for mine, theirs in zip(stored.rows, computed, strict=True):
                assert mine.expected_lapses == pytest.approx(theirs.expected_lapses, abs=0.011)
                assert mine.mean_risk == pytest.approx(theirs.mean_risk, abs=0.00011)


def test_a_fresh_install_computes_the_day_on_the_first_request_then_reads_it(
    client: TestClient,
    container: Container,
    insurers: dict[str, InsurerAccount],
    clock: Clock,
) -> None:
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))
    first_fleet = list(synthetic_vehicles(6, now=NOW, seed=7, ends_from=2, ends_until=29))
    store(first_fleet, insurers, container)
    assert runs(container) == 0

    first = client.get("/v1/forecast/lapse-risk?days=30", headers=regulator)

    assert first.status_code == 200, first.text
    assert runs(container) == 1
    assert sum(r["vehicles"] for r in first.json()["rows"]) == 6
    # Vehicles reported later today are in tomorrow's forecast, not in today's answers.
    later = list(synthetic_vehicles(4, now=NOW, seed=8, ends_from=2, ends_until=29))
    store(later, insurers, container)
    clock.now = NOW + timedelta(hours=3)
    again = client.get("/v1/forecast/lapse-risk?days=30", headers=regulator)
    assert again.json() == first.json()
    assert sum(g.vehicles for g in container.forecast.grouped("region", TODAY, 30)) == 10
    # An explicit instant that is the stored day's reads it too; any other is computed.
    stored_at = client.get(
        "/v1/forecast/lapse-risk", params={"at": "2026-11-20T00:00:00+08:00"}, headers=regulator
    )
    assert stored_at.json()["rows"] == first.json()["rows"]
    other = client.get(
        "/v1/forecast/lapse-risk", params={"at": "2026-11-20T01:00:00+08:00"}, headers=regulator
    )
    assert sum(r["vehicles"] for r in other.json()["rows"]) == 10
    # The next day: computed again, with every vehicle.
    clock.now = NOW + timedelta(days=1)
    tomorrow = client.get("/v1/forecast/lapse-risk?days=30", headers=regulator).json()
    assert tomorrow["at"] == "2026-11-21T00:00:00+08:00"
    assert sum(r["vehicles"] for r in tomorrow["rows"]) == 10
    assert runs(container) == 2


@pytest.mark.usefixtures("fleet")
def test_the_worker_pass_stores_each_day_once_and_keeps_a_week(
    container: Container, clock: Clock
) -> None:
    forecast = container.forecast
    stored = forecast.refresh_if_due(NOW)
    assert stored is not None and stored.as_of == TODAY
    assert forecast.refresh_if_due(NOW + timedelta(hours=5)) is None  # same day
    for days_later in range(1, 10):
        assert forecast.refresh_if_due(NOW + timedelta(days=days_later)) is not None
    with container.engine.connect() as conn:
        kept = sorted(conn.execute(select(forecast_runs.c.as_of)).scalars())
        oldest_total = conn.execute(select(func.min(forecast_totals.c.as_of))).scalar_one()
    assert len(kept) == 9  # the last nine days: KEEP_DAYS (8) before the newest, and it
    assert kept[0] == forecast_instant(NOW + timedelta(days=1))
    assert oldest_total == kept[0]


@pytest.mark.usefixtures("fleet")
def test_the_refresh_command_stores_the_day(
    container: Container, database_url: str, home: Path
) -> None:
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    at = "2026-11-20T10:00:00+08:00"
    for _ in range(2):  # a second run replaces the day's forecast
        done = CliRunner().invoke(app, ["forecast", "refresh", "--at", at, "--json"], env=env)
        assert done.exit_code == 0, done.output
        body = json.loads(done.stdout)
        assert body["as_of"] == "2026-11-20T00:00:00+08:00"
        assert body["vehicles"] == len(container.forecast.rank(TODAY, 90)) > 0
        assert runs(container) == 1


def test_migration_0021_makes_the_forecast_tables_and_downgrade_removes_them(
    blank: Engine,
) -> None:
    migrate(blank, "0020")
    before = set(inspect(blank).get_table_names())
    assert not {"forecast_runs", "forecast_totals"} & before
    migrate(blank, "0021")
    found = inspect(blank)
    for table in (forecast_runs, forecast_totals):
        assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys())
    assert found.get_pk_constraint("forecast_totals")["constrained_columns"] == [
        "as_of",
        "group_by",
        "key",
        "day",
    ]
    config = alembic_config()
    with blank.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0020")
    assert set(inspect(blank).get_table_names()) == before
