"""The daily match (DESIGN §11) through the HTTP API on both engines: the uninsured list
(paged with a cursor, as CSV, scrapped and deregistered never listed, the register's
status at ``at``), the unmatched list per insurer, the accident look-up (access-logged
with its reference), and ``ctplhub match --json``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app
from ctplhub.client import CtplHubClient, CtplHubError
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.store.repositories.access_log import access_log_table
from helpers import Clock, InsurerAccount, bearer_headers, event

BEIJING = timezone(timedelta(hours=8))
AT = "2026-06-01T10:00:00+08:00"
UNINSURED = "/v1/enforcement/uninsured"
LOOKUP = "/v1/accidents/lookup"


def vin(n: int) -> str:
    return with_vin_check_digit(f"LSVAU{n:03d}0N2183294")


def plate(n: int) -> str:
    return f"苏E·1{n:04d}"


def register_line(n: int, region: str, status: str = "registered", **extra: Any) -> str:
    item = {
        "vin": vin(n),
        "plate": plate(n),
        "vehicle_type": "passenger_small",
        "region_code": region,
        "status": status,
        "as_of": "2025-01-01T00:00:00+08:00",
        **extra,
    }
    return json.dumps(item, ensure_ascii=False)


def policy(n: int, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return event(
        policy_no=f"PDAA{n:04d}",
        vin=vin(n),
        plate=plate(n),
        coverage_start=start,
        coverage_end=end,
        occurred_at="2025-01-01T00:00:00+08:00",
        **extra,
    )


@pytest.fixture
def cpic(container: Container, client: TestClient) -> Iterator[InsurerAccount]:
    new = container.insurers.add("CPIC", "中国太平洋财产保险", actor="test", claims_phone="95500")
    api = CtplHubClient("http://testserver", new.key_id, new.secret, transport=client._transport)
    yield InsurerAccount(new.insurer_code, new.key_id, new.secret, api)
    api.close()


@pytest.fixture
def fleet(client: TestClient, container: Container, clock: Clock, picc: InsurerAccount) -> None:
    """V1 no cover; V2 covered; V3 lapsed (PICC); V4 scrapped; V5 another city; V6
    registered only after AT; V7 cover pending; V8 PICC cover, not in the register; V9
    PICC cover under another plate than the register's; V10 PICC cover, deregistered."""
    clock.now = datetime(2026, 6, 1, 10, tzinfo=BEIJING)
    lines = [
        register_line(1, "320505"),
        register_line(2, "320505"),
        register_line(3, "320506"),
        register_line(4, "320505"),
        register_line(4, "320505", "scrapped", as_of="2026-01-01T00:00:00+08:00"),
        register_line(5, "320600"),
        register_line(6, "320505", as_of="2026-07-01T00:00:00+08:00"),
        register_line(7, "320505"),
        register_line(9, "320505", plate="苏E·99999"),
        register_line(10, "320505", "deregistered"),
    ]
    registrar = bearer_headers(container.users.add("vms", "registrar"))
    fed = client.post(
        "/v1/register/vehicles",
        content="\n".join(lines).encode(),
        headers={**registrar, "Content-Type": "application/x-ndjson"},
    )
    assert fed.json()["accepted"] == len(lines), fed.text
    this_year = ("2026-03-01T00:00:00+08:00", "2027-03-01T00:00:00+08:00")
    answer = picc.api.report_batch(
        [
            policy(2, *this_year),
            policy(3, "2025-03-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00"),
            policy(7, "2026-07-01T00:00:00+08:00", "2027-07-01T00:00:00+08:00"),
            policy(8, *this_year),
            policy(9, *this_year),
            policy(10, *this_year),
        ]
    )
    assert answer["rejected"] == 0, answer


def uninsured(client: TestClient, token: str, **body: Any) -> Any:
    return client.post(UNINSURED, json=body, headers=bearer_headers(token))


@pytest.mark.usefixtures("fleet")
def test_the_uninsured_list_holds_registered_vehicles_without_cover_in_vin_order(
    client: TestClient, police_token: str
) -> None:
    answer = uninsured(client, police_token, region_prefix="3205")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "vehicles": [
            {
                "plate": plate(1),
                "vin_masked": vin(1)[:-6] + "******",
                "region_code": "320505",
                "lapsed_since": None,
                "last_insurer_code": None,
            },
            {
                "plate": plate(3),
                "vin_masked": vin(3)[:-6] + "******",
                "region_code": "320506",
                "lapsed_since": "2026-03-01T00:00:00+08:00",
                "last_insurer_code": "PICC",
            },
            {
                "plate": plate(7),
                "vin_masked": vin(7)[:-6] + "******",
                "region_code": "320505",
                "lapsed_since": None,
                "last_insurer_code": None,
            },
        ],
        "next_cursor": None,
    }
    wider = uninsured(client, police_token, region_prefix="32").json()["vehicles"]
    assert [v["plate"] for v in wider] == [plate(1), plate(3), plate(5), plate(7)]
    later = uninsured(client, police_token, region_prefix="320505", at="2026-08-01T00:00:00+08:00")
    # V6 is registered by then; V7's cover has started; V3 is not in 320505.
    assert [v["plate"] for v in later.json()["vehicles"]] == [plate(1), plate(6)]


@pytest.mark.usefixtures("fleet")
def test_pages_follow_the_cursor_and_csv_streams_them_all(
    client: TestClient, container: Container
) -> None:
    token = container.users.add("regulator-1", "regulator")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body: dict[str, Any] = {"region_prefix": "", "limit": 1}
        if cursor is not None:
            body["cursor"] = cursor
        page = uninsured(client, token, **body).json()
        seen += [v["plate"] for v in page["vehicles"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert vin(1) not in cursor and vin(1)[:-6] not in cursor  # opaque
    assert seen == [plate(1), plate(3), plate(5), plate(7)]
    assert pages == 4
    as_csv = client.post(
        UNINSURED,
        json={"region_prefix": ""},
        headers={**bearer_headers(token), "Accept": "text/csv"},
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["plate", "vin_masked", "region_code", "lapsed_since", "last_insurer_code"]
    assert [r[0] for r in rows[1:]] == seen
    assert rows[2][3:] == ["2026-03-01T00:00:00+08:00", "PICC"]


@pytest.mark.usefixtures("fleet")
def test_bad_uninsured_requests_are_refused(
    client: TestClient, container: Container, police_token: str
) -> None:
    for body in (
        {"region_prefix": "32", "limit": 1001},
        {"region_prefix": "32", "limit": 0},
        {"region_prefix": "32", "cursor": "not-a-cursor"},
        {"region_prefix": "32a"},
        {},
        {"region_prefix": "32", "colour": "red"},
    ):
        refused = uninsured(client, police_token, **body)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["code"] == "validation_failed"
    assert (
        uninsured(client, police_token, region_prefix="32", at="2026-06-01").json()["error"]["code"]
        == "invalid_instant"
    )
    agent = container.users.add("agent-1", "agent")
    assert uninsured(client, agent, region_prefix="32").status_code == 403


@pytest.mark.usefixtures("fleet")
def test_the_unmatched_list_names_each_policy_and_why(
    picc: InsurerAccount, cpic: InsurerAccount
) -> None:
    answer = picc.api.request("GET", "/v1/insurers/PICC/unmatched")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "policies": [
            {"policy_no": "PDAA0008", "reason": "vin_not_registered"},
            {"policy_no": "PDAA0009", "reason": "plate_differs", "register_plate": "苏E·99999"},
        ]
    }
    other = cpic.api.request("GET", "/v1/insurers/PICC/unmatched")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "insurer_mismatch"
    assert cpic.api.request("GET", "/v1/insurers/CPIC/unmatched").json() == {"policies": []}


@pytest.mark.usefixtures("fleet")
def test_the_client_reads_its_unmatched_list_signed(
    picc: InsurerAccount, cpic: InsurerAccount
) -> None:
    assert picc.api.unmatched() == {
        "policies": [
            {"policy_no": "PDAA0008", "reason": "vin_not_registered"},
            {"policy_no": "PDAA0009", "reason": "plate_differs", "register_plate": "苏E·99999"},
        ]
    }
    assert cpic.api.unmatched("CPIC") == {"policies": []}
    with pytest.raises(CtplHubError) as refused:
        cpic.api.unmatched("PICC")
    assert (refused.value.status, refused.value.code) == (403, "insurer_mismatch")


def test_the_accident_look_up_names_the_insurer_and_its_claims_phone_and_is_logged(
    client: TestClient, container: Container, clock: Clock, cpic: InsurerAccount, police_token: str
) -> None:
    clock.now = datetime(2026, 6, 1, 10, tzinfo=BEIJING)
    cpic.api.report_event(event(insurer_code="CPIC", policy_no="CPIC-2026-000123", occurred_at=AT))
    headers = bearer_headers(police_token)
    body = {
        "plate": "苏E12345",
        "at": "2025-09-30T18:20:00+08:00",
        "accident_ref": "苏公交认字[2025]0930-17",
        "reason": "collision",
    }
    answer = client.post(LOOKUP, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "covered": True,
        "insurer_code": "CPIC",
        "insurer_name": "中国太平洋财产保险",
        "claims_phone": "95500",
        "policy_no_masked": "…0123",
    }
    after = client.post(LOOKUP, json={**body, "at": "2026-03-01T00:00:00+08:00"}, headers=headers)
    assert after.json() == {
        "covered": False,
        "insurer_code": None,
        "insurer_name": None,
        "claims_phone": None,
        "policy_no_masked": None,
    }
    nobody = client.post(LOOKUP, json={**body, "plate": "京A99999"}, headers=headers)
    assert nobody.status_code == 200
    assert nobody.json()["covered"] is False
    container.access_log.flush_now()
    log = access_log_table(container.engine)
    with container.engine.connect() as conn:
        rows = conn.execute(
            select(log.c.actor, log.c.actor_role, log.c.purpose, log.c.reference, log.c.reason)
        ).all()
    entry = ("officer-001", "police", "accident", "苏公交认字[2025]0930-17", "collision")
    assert [tuple(r) for r in rows] == [entry, entry]  # the unknown plate read no vehicle


def test_accident_look_ups_are_for_police_with_a_reference(
    client: TestClient, container: Container, police_token: str
) -> None:
    body = {"plate": "苏E12345", "at": AT, "accident_ref": "A-1", "reason": "collision"}
    regulator = bearer_headers(container.users.add("regulator-1", "regulator"))
    assert client.post(LOOKUP, json=body, headers=regulator).json()["error"]["code"] == (
        "role_not_allowed"
    )
    police = bearer_headers(police_token)
    for broken, code in (
        ({k: v for k, v in body.items() if k != "accident_ref"}, "validation_failed"),
        ({**body, "reason": "Because I said so"}, "validation_failed"),
        ({**body, "accident_ref": ""}, "validation_failed"),
        ({**body, "at": "2026-06-01"}, "invalid_instant"),
        ({**body, "plate": "XX"}, "invalid_plate"),
    ):
        refused = client.post(LOOKUP, json=broken, headers=police)
        assert refused.status_code == 400, broken
        assert refused.json()["error"]["code"] == code


@pytest.mark.usefixtures("fleet")
def test_ctplhub_match_prints_the_counts(database_url: str, home: Path) -> None:
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    result = CliRunner().invoke(app, ["match", "--at", AT, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "at": AT,
        "region_prefix": "",
        "uninsured": {"total": 4, "by_region": {"320505": 2, "320506": 1, "320600": 1}},
        "unmatched": {
            "total": 2,
            "by_insurer": {"PICC": {"vin_not_registered": 1, "plate_differs": 1}},
        },
    }
    scoped = CliRunner().invoke(
        app, ["match", "--at", AT, "--region-prefix", "320506", "--json"], env=env
    )
    assert json.loads(scoped.stdout)["uninsured"] == {"total": 1, "by_region": {"320506": 1}}
    refused = CliRunner().invoke(app, ["match", "--at", "yesterday", "--json"], env=env)
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["code"] == "invalid_instant"


def test_insurer_add_takes_a_claims_phone(
    database_url: str, home: Path, container: Container
) -> None:
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    args = ["insurer", "add", "PINGAN", "--name", "中国平安", "--claims-phone", "95511", "--json"]
    added = CliRunner().invoke(app, args, env=env)
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["insurer_code"] == "PINGAN"
    assert container.insurers.get("PINGAN").claims_phone == "95511"
    bad = ["insurer", "add", "TPIC", "--name", "太平", "--claims-phone", "call us", "--json"]
    refused = CliRunner().invoke(app, bad, env=env)
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["code"] == "validation_failed"
