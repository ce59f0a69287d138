"""``GET /v1/forecast/lapse-risk`` and the ``/staff/forecast`` page (issue 12 item 6), on
SQLite and PostgreSQL: regulators only, sums by region that match the service's, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app
from ctplhub.services.demo_fleet import DEMO_INSURERS
from ctplhub.services.forecast import forecast_instant
from ctplhub.services.risk_history import synthetic_vehicles
from forecast_fixtures import store
from helpers import Clock, InsurerAccount, bearer_headers, signed_in

NOW = datetime(2026, 11, 20, 2, tzinfo=UTC)


@pytest.fixture
def expiring(
    make_insurer: Callable[[str], InsurerAccount], container: Container, clock: Clock
) -> int:
    clock.now = NOW
    insurers = {code: make_insurer(code) for code, _ in DEMO_INSURERS}
    fleet = list(synthetic_vehicles(10, now=NOW, seed=3, ends_from=1, ends_until=29))
    store(fleet, insurers, container)
    return len(fleet)


@pytest.mark.usefixtures("expiring")
def test_regulators_get_the_forecast_by_region_as_json_and_csv(
    client: TestClient, container: Container
) -> None:
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))
    police = bearer_headers(container.users.add("officer-1", "police"))

    answer = client.get("/v1/forecast/lapse-risk?group_by=region&days=30", headers=regulator)
    as_csv = client.get("/v1/forecast/lapse-risk", headers={**regulator, "Accept": "text/csv"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The day's stored forecast: at that day's 00:00 Beijing time, computed just now.
    assert body["at"] == "2026-11-20T00:00:00+08:00"
    assert body["computed_at"] == "2026-11-20T10:00:00+08:00"
    expected = container.forecast.grouped("region", forecast_instant(NOW), 30)
    assert [row["key"] for row in body["rows"]] == [g.key for g in expected]
    assert sum(row["vehicles"] for row in body["rows"]) == 10
    assert body["days"] == 30 and body["group_by"] == "region"
    assert body["top_decile_risk"] == round(container.forecast.top_decile, 4)
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [r["key"] for r in rows] == [g.key for g in expected]
    assert client.get("/v1/forecast/lapse-risk", headers=police).status_code == 403
    assert client.get("/v1/forecast/lapse-risk").status_code == 401
    bad = client.get("/v1/forecast/lapse-risk?group_by=owner", headers=regulator)
    assert bad.status_code == 400
    assert client.get("/v1/forecast/lapse-risk?days=400", headers=regulator).status_code == 400


@pytest.mark.usefixtures("expiring")
def test_the_forecast_page_draws_regions_in_chinese_for_regulators_only(
    web: TestClient, container: Container
) -> None:
    signed_in(web, container, "officer-1", "police")
    assert web.get("/staff/forecast").status_code == 403
    web.cookies.clear()
    signed_in(web, container, "reg-1", "regulator")

    page = web.get("/staff/forecast?days=30")
    download = web.get("/staff/forecast.csv?days=30")

    assert page.status_code == 200
    groups = container.forecast.grouped("region", forecast_instant(NOW), 30)
    for group in groups:
        assert f'data-region="{group.key}"' in page.text
    assert page.text.count('<g class="group"') == len(groups)
    assert "脱保风险预测" in page.text
    assert "<script" not in page.text
    assert download.status_code == 200
    assert download.text.splitlines()[0] == "key,vehicles,expected_lapses,mean_risk,top_decile"
    assert web.get("/staff/forecast?days=0").status_code == 400
    assert 'href="/staff/forecast"' in web.get("/staff").text


@pytest.mark.usefixtures("expiring")
def test_the_rank_command_lists_masked_vins_riskiest_first(
    container: Container, database_url: str, home: Path
) -> None:
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    at = "2026-11-20T10:00:00+08:00"

    listed = CliRunner().invoke(app, ["forecast", "rank", "--at", at, "--json"], env=env)
    grouped = CliRunner().invoke(
        app, ["forecast", "rank", "--at", at, "--group-by", "province", "--json"], env=env
    )

    assert listed.exit_code == 0, listed.output
    body = json.loads(listed.stdout)
    assert body["expiring"] == 10
    risks = [v["risk"] for v in body["vehicles"]]
    assert risks == sorted(risks, reverse=True)
    assert all(v["vin_masked"].endswith("******") for v in body["vehicles"])
    assert grouped.exit_code == 0, grouped.output
    assert sum(r["vehicles"] for r in json.loads(grouped.stdout)["rows"]) == 10
