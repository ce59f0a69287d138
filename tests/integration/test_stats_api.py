"""Statistics for regulators (DESIGN §11) through the HTTP API on both engines, against
a small history built by hand: a renewal exactly at the end instant (by another
insurer), a late renewal, a policy never renewed, a cancelled policy, a surrendered one,
one renewed early; the refresh is incremental (a late renewal reported afterwards
moves its policy from lapsed to late) and ``ctplhub stats refresh --json`` counts."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.cli.main import app
from helpers import Clock, InsurerAccount, bearer_headers
from stats_history import INGESTED, NOW, cpic, history, policy, regulator

__all__ = ["cpic", "history", "regulator"]  # fixtures, used by name


def rows(client: TestClient, headers: dict[str, str], path: str) -> list[dict[str, Any]]:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stale"] is False
    found: list[dict[str, Any]] = answer.json()["rows"]
    return found


def renewal(key: str, due: int, on_time: int, late: int, lapsed: int) -> dict[str, Any]:
    rate = round((on_time + late) / due, 4)
    return {
        "key": key,
        "due": due,
        "renewed_on_time": on_time,
        "renewed_late": late,
        "lapsed": lapsed,
        "renewal_rate": rate,
    }


PERIOD = "from=2026-01-01&to=2026-06-30"


@pytest.mark.usefixtures("history")
def test_renewals_count_each_due_policy_once_by_insurer_region_and_month(
    client: TestClient, regulator: dict[str, str]
) -> None:
    answer = client.get(f"/v1/stats/renewals?group_by=insurer&{PERIOD}", headers=regulator)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # ``to`` is cut to yesterday: the last complete day before NOW.
    assert (body["group_by"], body["from"], body["to"]) == ("insurer", "2026-01-01", "2026-06-09")
    assert body["as_of"] == "2026-06-10T10:00:00+08:00"
    assert body["rows"] == [renewal("CPIC", 1, 0, 0, 1), renewal("PICC", 4, 1, 1, 2)]
    assert rows(client, regulator, f"/v1/stats/renewals?group_by=region&{PERIOD}") == [
        renewal("320500", 3, 1, 1, 1),
        renewal("320600", 2, 0, 0, 2),
    ]
    assert rows(client, regulator, f"/v1/stats/renewals?group_by=month&{PERIOD}") == [
        renewal("2026-02", 1, 0, 0, 1),  # the surrendered policy
        renewal("2026-03", 2, 1, 1, 0),
        renewal("2026-04", 1, 0, 0, 1),
        renewal("2026-05", 1, 0, 0, 1),
    ]
    march = rows(
        client, regulator, "/v1/stats/renewals?group_by=month&from=2026-03-01&to=2026-03-31"
    )
    assert march == [renewal("2026-03", 2, 1, 1, 0)]


@pytest.mark.usefixtures("history")
def test_lapses_give_vehicles_lapsed_now_and_their_median_days(
    client: TestClient, regulator: dict[str, str]
) -> None:
    # V3 since 2026-04-01 (70 days), V4 since 2026-05-01 (40), V5 since 2026-02-01 (129).
    assert rows(client, regulator, "/v1/stats/lapses?group_by=region") == [
        {"key": "320500", "vehicles_lapsed": 1, "median_days_lapsed": 129},
        {"key": "320600", "vehicles_lapsed": 2, "median_days_lapsed": 55},
    ]
    assert rows(client, regulator, "/v1/stats/lapses?group_by=insurer") == [
        {"key": "CPIC", "vehicles_lapsed": 1, "median_days_lapsed": 40},
        {"key": "PICC", "vehicles_lapsed": 2, "median_days_lapsed": 99.5},
    ]


@pytest.mark.usefixtures("history")
def test_expiring_lists_each_next_day_with_the_policies_not_yet_renewed(
    client: TestClient, regulator: dict[str, str]
) -> None:
    answer = client.get("/v1/stats/expiring?days=90", headers=regulator).json()
    assert (answer["from"], answer["to"]) == ("2026-06-11", "2026-09-08")
    assert len(answer["rows"]) == 90
    counted = {r["date"]: r["count"] for r in answer["rows"] if r["count"]}
    assert counted == {"2026-07-01": 1}  # V7; V8 is already renewed
    assert answer["rows"][0] == {"date": "2026-06-11", "count": 0}


@pytest.mark.usefixtures("history")
def test_every_figure_is_also_csv(client: TestClient, regulator: dict[str, str]) -> None:
    csv_headers = {**regulator, "Accept": "text/csv"}
    answer = client.get(f"/v1/stats/renewals?group_by=insurer&{PERIOD}", headers=csv_headers)
    assert answer.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["key", "due", "renewed_on_time", "renewed_late", "lapsed", "renewal_rate"],
        ["CPIC", "1", "0", "0", "1", "0.0"],
        ["PICC", "4", "1", "1", "2", "0.5"],
    ]
    lapses = client.get("/v1/stats/lapses", headers=csv_headers).text.splitlines()
    assert lapses == ["key,vehicles_lapsed,median_days_lapsed", "320500,1,129.0", "320600,2,55.0"]
    expiring = client.get("/v1/stats/expiring?days=30", headers=csv_headers).text.splitlines()
    assert expiring[0] == "date,count"
    assert "2026-07-01,1" in expiring and len(expiring) == 31


@pytest.mark.usefixtures("history")
def test_a_late_renewal_reported_later_is_counted_by_the_next_refresh(
    client: TestClient,
    regulator: dict[str, str],
    clock: Clock,
    picc: InsurerAccount,
    database_url: str,
    home: Path,
) -> None:
    assert rows(client, regulator, "/v1/stats/lapses")[1]["vehicles_lapsed"] == 2
    late = policy(13, 3, "2026-06-05", "2027-06-05", region_code="320600")
    assert picc.api.report_batch([late])["accepted"] == 1
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    refreshed = CliRunner().invoke(app, ["stats", "refresh", "--json"], env=env)
    assert refreshed.exit_code == 0, refreshed.output
    counted = json.loads(refreshed.stdout)
    assert (counted["events"], counted["vehicles"], counted["complete"]) == (1, 1, True)
    clock.advance(minutes=5)
    assert rows(client, regulator, "/v1/stats/lapses") == [
        {"key": "320500", "vehicles_lapsed": 1, "median_days_lapsed": 129},
        {"key": "320600", "vehicles_lapsed": 1, "median_days_lapsed": 40},
    ]
    assert rows(client, regulator, f"/v1/stats/renewals?group_by=region&{PERIOD}")[1] == (
        renewal("320600", 2, 0, 1, 1)
    )
    again = CliRunner().invoke(app, ["stats", "refresh", "--json"], env=env)
    assert json.loads(again.stdout)["events"] == 0


def test_a_request_counts_what_waits_and_postgresql_lets_new_events_settle(
    client: TestClient,
    regulator: dict[str, str],
    clock: Clock,
    picc: InsurerAccount,
    database_url: str,
) -> None:
    clock.now = INGESTED
    assert picc.api.report_batch([policy(1, 1, "2025-03-01", "2026-03-01")])["accepted"] == 1
    # At once: SQLite commits in id order, so the request counts the event itself; on
    # PostgreSQL an event waits two minutes for older transactions to end.
    at_once = rows(client, regulator, "/v1/stats/lapses")
    if database_url.startswith("sqlite"):
        assert at_once == [{"key": "320500", "vehicles_lapsed": 1, "median_days_lapsed": 92}]
    else:
        assert at_once == []
    clock.now = NOW
    assert rows(client, regulator, "/v1/stats/lapses") == [
        {"key": "320500", "vehicles_lapsed": 1, "median_days_lapsed": 101}
    ]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("/v1/stats/renewals?group_by=plate", 400, "validation_failed"),
        ("/v1/stats/renewals?from=2026-05-01&to=2026-04-01", 400, "validation_failed"),
        ("/v1/stats/renewals?from=2026-13-01", 400, "validation_failed"),
        ("/v1/stats/renewals?from=2000-01-01&to=2026-01-01", 400, "range_too_large"),
        ("/v1/stats/expiring?days=0", 400, "validation_failed"),
        ("/v1/stats/expiring?days=abc", 400, "validation_failed"),
        ("/v1/stats/lapses?group_by=month", 400, "validation_failed"),
    ],
)
def test_bad_parameters_are_refused_with_stable_codes(
    client: TestClient, regulator: dict[str, str], query: str, status: int, code: str
) -> None:
    answer = client.get(query, headers=regulator)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_only_regulators_read_the_statistics(client: TestClient, police_token: str) -> None:
    assert client.get("/v1/stats/lapses").json()["error"]["code"] == "missing_token"
    refused = client.get("/v1/stats/lapses", headers=bearer_headers(police_token))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_not_allowed"


def test_no_figures_yet_is_empty_rows(client: TestClient, regulator: dict[str, str]) -> None:
    assert rows(client, regulator, "/v1/stats/renewals") == []
    assert rows(client, regulator, "/v1/stats/lapses") == []
    assert date.fromisoformat(client.get("/v1/stats/expiring", headers=regulator).json()["from"])
