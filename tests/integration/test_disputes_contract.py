"""The disputes contract, written from DESIGN §10 (and the rules of §3 and §5.1 it leans
on) alone: field names, statuses and error codes exactly as the design spells them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app as cli_app
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

ERROR_KEYS = {"code", "message"}


@pytest.fixture(autouse=True)
def covered(clock: Clock, picc: InsurerAccount) -> None:
    clock.now = datetime.fromisoformat("2026-02-02T10:00:00+08:00")
    picc.api.report_event(event())


def verified(**extra: Any) -> dict[str, Any]:
    return {"plate": "苏E·12345", "vin_last6": VIN[-6:], **extra}


def code_of(answer: Any) -> str:
    error = answer.json()["error"]
    assert set(error) >= ERROR_KEYS
    return str(error["code"])


def test_the_disputes_contract(
    client: TestClient,
    container: Container,
    picc: InsurerAccount,
    make_insurer: Any,
    database_url: str,
    home: Path,
) -> None:
    # POST /v1/disputes: a verified query body plus kind and message -> 201
    made = client.post("/v1/disputes", json=verified(kind="renewal_missing", message="已续保"))
    assert made.status_code == 201
    body = made.json()
    assert set(body) == {"dispute_id", "status", "insurer_code", "due_at", "token"}
    assert body["status"] == "open" and body["insurer_code"] == "PICC"
    for kind in ("wrong_data", "other"):
        assert client.post("/v1/disputes", json=verified(kind=kind, message="x")).status_code == 201

    # §3: a wrong factor is 404 not_found exactly like an unknown plate; no factor is 400
    wrong = client.post(
        "/v1/disputes",
        json={"plate": "苏E12345", "vin_last6": "000000", "kind": "other", "message": "x"},
    )
    unknown = client.post(
        "/v1/disputes",
        json={"plate": "苏E99999", "vin_last6": VIN[-6:], "kind": "other", "message": "x"},
    )
    assert (wrong.status_code, code_of(wrong)) == (404, "not_found")
    assert wrong.json() == unknown.json()
    bare = client.post("/v1/disputes", json={"plate": "苏E12345", "kind": "other", "message": "x"})
    assert (bare.status_code, code_of(bare)) == (400, "validation_failed")

    # POST /v1/disputes/{id}/status {"token"} -> {"dispute_id", "status", "history"}
    status = client.post(f"/v1/disputes/{body['dispute_id']}/status", json={"token": body["token"]})
    assert status.status_code == 200
    assert set(status.json()) == {"dispute_id", "status", "history"}
    assert status.json()["status"] == "open"
    assert [set(h) for h in status.json()["history"]] == [{"at", "status", "note"}]
    for bad_id, token in ((body["dispute_id"], "wrong"), (body["dispute_id"] + 99, body["token"])):
        answer = client.post(f"/v1/disputes/{bad_id}/status", json={"token": token})
        assert (answer.status_code, code_of(answer)) == (404, "not_found")

    # GET /v1/insurers/{code}/disputes?status=open (signed, the query string in the path)
    listed = picc.api.request("GET", "/v1/insurers/PICC/disputes?status=open")
    assert listed.status_code == 200
    items = listed.json()["disputes"]
    assert len(items) == 3
    assert {frozenset(i) for i in items} == {
        frozenset({"dispute_id", "kind", "plate", "message", "opened_at", "due_at", "status"})
    }
    assert {i["status"] for i in items} == {"open"}

    # only its own disputes, else 403
    cpic = make_insurer("CPIC", "中国太平洋财产保险")
    theirs = cpic.api.request("GET", "/v1/insurers/PICC/disputes?status=open")
    assert theirs.status_code == 403
    resolve = f"/v1/disputes/{body['dispute_id']}/resolve"
    foreign = cpic.api.request("POST", resolve, json={"outcome": "rejected", "note": "x"})
    assert foreign.status_code == 403

    # POST /v1/disputes/{id}/resolve {"outcome", "note"} -> 200 with the status body
    done = picc.api.request("POST", resolve, json={"outcome": "corrected", "note": "已补报"})
    assert done.status_code == 200
    assert set(done.json()) == {"dispute_id", "status", "history"}
    assert done.json()["status"] == "resolved"
    assert [h["status"] for h in done.json()["history"]] == ["open", "resolved"]
    # resolving a dispute that is no longer open: 409 dispute_closed
    again = picc.api.request("POST", resolve, json={"outcome": "rejected", "note": "x"})
    assert (again.status_code, code_of(again)) == (409, "dispute_closed")

    # an open dispute past due_at becomes escalated and shows for regulators
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    ran = CliRunner().invoke(cli_app, ["disputes", "escalate", "--at", body["due_at"]], env=env)
    assert ran.exit_code == 0, ran.output
    regulator = bearer_headers(container.users.add("reg-contract", "regulator"))
    escalated = client.get("/v1/disputes?status=escalated", headers=regulator)
    assert escalated.status_code == 200
    assert len(escalated.json()["disputes"]) == 2
    assert {d["status"] for d in escalated.json()["disputes"]} == {"escalated"}
    statuses = {"open", "resolved", "escalated"}
    assert {h["status"] for h in done.json()["history"]} <= statuses
