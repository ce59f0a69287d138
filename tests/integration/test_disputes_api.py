"""Disputes over HTTP (DESIGN §10), on SQLite and PostgreSQL: an owner files, the insurer
of the latest policy lists (a signed answer) and resolves, the owner reads the status by
token; a wrong token, another insurer, a second resolution and a wrong factor each get
their stable code; ``ctplhub disputes escalate --at`` escalates what is overdue, once,
and regulators list it; a subscribed owner is told of every step through the outbox;
every step is in the access log; the owner's message is sealed at rest."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app as cli_app
from ctplhub.notify.content import render_email, render_short
from ctplhub.notify.webhook import webhook_body
from ctplhub.security.answer_signing import verify_signed
from ctplhub.store.repositories.access_log import access_log_table
from ctplhub.store.tables import dispute_history, disputes, reminders
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

# Thursday 12 February 2026, 10:00 in Beijing: Friday 13 and the make-up Saturday 14
# count, the Spring Festival (15-23 February) does not, Tuesday 24 is the third day.
NOW = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)
DUE = "2026-02-25T00:00:00+08:00"
OWNER = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
MESSAGE = "已于2月1日在人保续保，张伟 13812345678，查询仍显示旧保单"


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


@pytest.fixture
def covered(picc: InsurerAccount) -> None:
    picc.api.report_event(event())


def file(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/disputes", json=body)


def filed(client: TestClient, kind: str = "renewal_missing") -> dict[str, Any]:
    answer = file(client, **OWNER, kind=kind, message=MESSAGE)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def status_of(client: TestClient, dispute_id: object, token: str) -> Any:
    return client.post(f"/v1/disputes/{dispute_id}/status", json={"token": token})


def escalate(env: dict[str, str], at: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli_app, ["disputes", "escalate", "--at", at, "--json"], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.fixture
def env(database_url: str, home: Path) -> dict[str, str]:
    return {
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
    }


@pytest.mark.usefixtures("covered")
def test_file_list_resolve_and_read_the_status(
    client: TestClient, container: Container, picc: InsurerAccount, clock: Clock
) -> None:
    made = filed(client)
    assert set(made) == {"dispute_id", "status", "insurer_code", "due_at", "token"}
    assert made["status"] == "open" and made["insurer_code"] == "PICC"
    assert made["due_at"] == DUE

    queue = picc.api.disputes(status="open")
    assert verify_signed(queue, container.signer.jwks())
    assert queue["disputes"] == [
        {
            "dispute_id": made["dispute_id"],
            "kind": "renewal_missing",
            "plate": "苏E·12345",
            "message": MESSAGE,
            "opened_at": "2026-02-12T10:00:00+08:00",
            "due_at": DUE,
            "status": "open",
        }
    ]

    clock.advance(hours=3)
    resolved = picc.api.resolve_dispute(made["dispute_id"], "corrected", "已补报续保保单")
    assert resolved == {
        "dispute_id": made["dispute_id"],
        "status": "resolved",
        "history": [
            {"at": "2026-02-12T10:00:00+08:00", "status": "open", "note": None},
            {
                "at": "2026-02-12T13:00:00+08:00",
                "status": "resolved",
                "note": "corrected: 已补报续保保单",
            },
        ],
    }
    seen = status_of(client, made["dispute_id"], made["token"])
    assert seen.status_code == 200 and seen.json() == resolved
    assert picc.api.disputes(status="open")["disputes"] == []
    assert [d["status"] for d in picc.api.disputes(status="resolved")["disputes"]] == ["resolved"]

    with container.engine.connect() as conn:
        row = conn.execute(select(disputes)).one()
        notes = [r.note_enc for r in conn.execute(select(dispute_history))]
    assert row.vin == VIN and row.plate == "苏E12345" and row.outcome == "corrected"
    assert MESSAGE.encode() not in row.message_enc and "张伟".encode() not in row.message_enc
    assert made["token"] not in row.token_hash and len(row.token_hash) == 64
    assert notes[0] is None and "已补报".encode() not in notes[1]


@pytest.mark.usefixtures("covered")
def test_the_dispute_goes_to_the_insurer_of_the_latest_policy(
    client: TestClient, make_insurer: Any
) -> None:
    cpic = make_insurer("CPIC", "中国太平洋财产保险")
    cpic.api.report_event(
        event(
            insurer_code="CPIC",
            policy_no="CPIC2026000001",
            occurred_at="2026-02-01T09:00:00+08:00",
            coverage_start="2026-03-01T00:00:00+08:00",
            coverage_end="2027-03-01T00:00:00+08:00",
        )
    )
    made = filed(client, kind="wrong_data")
    assert made["insurer_code"] == "CPIC"
    assert [d["dispute_id"] for d in cpic.api.disputes()["disputes"]] == [made["dispute_id"]]


@pytest.mark.usefixtures("covered")
def test_a_wrong_token_or_id_is_not_found_alike(client: TestClient) -> None:
    made = filed(client)
    answers = [
        status_of(client, made["dispute_id"], "dsp_" + "x" * 43),
        status_of(client, made["dispute_id"] + 1, made["token"]),
        status_of(client, "abc", made["token"]),
        status_of(client, made["dispute_id"], ""),
    ]
    assert {a.status_code for a in answers} == {404}
    assert {a.json()["error"]["code"] for a in answers} == {"not_found"}
    assert client.post(f"/v1/disputes/{made['dispute_id']}/status", json={}).status_code == 400


@pytest.mark.usefixtures("covered")
def test_a_wrong_factor_answers_like_an_unknown_plate(client: TestClient) -> None:
    body = {"kind": "other", "message": MESSAGE}
    wrong = file(client, plate="苏E12345", vin_last6="000000", **body)
    unknown = file(client, plate="苏E99999", vin_last6=VIN[-6:], **body)
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json() and wrong.json()["error"]["code"] == "not_found"
    by_id = file(client, plate="苏E12345", owner_id_number="11010519491231002X", **body)
    assert by_id.status_code == 201


@pytest.mark.usefixtures("covered")
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"plate": "苏E12345", "kind": "other", "message": "x"}, "validation_failed"),
        ({**OWNER, "message": "x"}, "validation_failed"),
        ({**OWNER, "kind": "fraud", "message": "x"}, "validation_failed"),
        ({**OWNER, "kind": "other", "message": "  "}, "validation_failed"),
        (
            {**OWNER, "kind": "other", "message": "x", "at": "2026-02-12T10:00:00+08:00"},
            "validation_failed",
        ),
        ({**OWNER, "kind": "other", "message": "x", "extra": 1}, "validation_failed"),
        ({"plate": "苏E", "vin_last6": "183294", "kind": "other", "message": "x"}, "invalid_plate"),
    ],
)
def test_a_bad_body_is_refused_with_a_stable_code(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    answer = file(client, **body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code


@pytest.mark.usefixtures("covered")
def test_only_its_own_insurer_lists_and_resolves_and_only_once(
    client: TestClient, picc: InsurerAccount, make_insurer: Any
) -> None:
    made = filed(client)
    cpic = make_insurer("CPIC", "中国太平洋财产保险")
    other = cpic.api.request(
        "POST",
        f"/v1/disputes/{made['dispute_id']}/resolve",
        json={"outcome": "rejected", "note": "不是我们的"},
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "insurer_mismatch"
    theirs = cpic.api.request("GET", "/v1/insurers/PICC/disputes?status=open")
    assert theirs.status_code == 403 and theirs.json()["error"]["code"] == "insurer_mismatch"
    assert cpic.api.disputes()["disputes"] == []

    first = picc.api.request(
        "POST",
        f"/v1/disputes/{made['dispute_id']}/resolve",
        json={"outcome": "rejected", "note": "保单已于2025年退保"},
    )
    again = picc.api.request(
        "POST",
        f"/v1/disputes/{made['dispute_id']}/resolve",
        json={"outcome": "corrected", "note": "再试"},
    )
    assert first.status_code == 200 and first.json()["history"][-1]["note"].startswith("rejected")
    assert again.status_code == 409 and again.json()["error"]["code"] == "dispute_closed"
    missing = picc.api.request(
        "POST", "/v1/disputes/999999/resolve", json={"outcome": "corrected", "note": "x"}
    )
    assert missing.status_code == 404
    bad = picc.api.request(
        "POST", f"/v1/disputes/{made['dispute_id']}/resolve", json={"outcome": "maybe", "note": "x"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_failed"
    unsigned = client.post(
        f"/v1/disputes/{made['dispute_id']}/resolve", json={"outcome": "corrected", "note": "x"}
    )
    assert unsigned.status_code == 401


@pytest.mark.usefixtures("covered")
def test_overdue_disputes_are_escalated_once_and_regulators_list_them(
    client: TestClient,
    container: Container,
    picc: InsurerAccount,
    env: dict[str, str],
    clock: Clock,
) -> None:
    made = filed(client)
    regulator = bearer_headers(container.users.add("reg-001", "regulator"))
    police = bearer_headers(container.users.add("officer-001", "police"))

    assert escalate(env, "2026-02-24T23:59:59+08:00")["escalated"] == 0  # not yet due
    first = escalate(env, DUE)
    again = escalate(env, "2026-02-26T10:00:00+08:00")
    assert (first["escalated"], first["dispute_ids"]) == (1, [made["dispute_id"]])
    assert again["escalated"] == 0

    listed = client.get("/v1/disputes?status=escalated", headers=regulator)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert verify_signed(body, container.signer.jwks())
    assert [(d["dispute_id"], d["insurer_code"], d["status"]) for d in body["disputes"]] == [
        (made["dispute_id"], "PICC", "escalated")
    ]
    assert client.get("/v1/disputes", headers=regulator).json()["disputes"] == body["disputes"]
    assert client.get("/v1/disputes?status=escalated", headers=police).status_code == 403
    assert client.get("/v1/disputes?status=escalated").status_code == 401
    bad = client.get("/v1/disputes?status=lost", headers=regulator)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_failed"

    status = status_of(client, made["dispute_id"], made["token"]).json()
    assert [(h["at"], h["status"]) for h in status["history"]] == [
        ("2026-02-12T10:00:00+08:00", "open"),
        (DUE, "escalated"),
    ]
    assert status["status"] == "escalated" and status["history"][1]["note"]

    # an escalated dispute can still be answered by its insurer (docs/DECISIONS.md)
    clock.now = datetime(2026, 2, 26, 2, 0, tzinfo=UTC)
    late = picc.api.resolve_dispute(made["dispute_id"], "corrected", "已补报")
    assert [h["status"] for h in late["history"]] == ["open", "escalated", "resolved"]
    assert client.get("/v1/disputes?status=escalated", headers=regulator).json()["disputes"] == []


def outbox_rows(container: Container) -> list[tuple[str, int, int]]:
    r = reminders.c
    with container.engine.connect() as conn:
        rows = conn.execute(select(r.rule, r.dispute_id, r.subscription_id).order_by(r.id))
        return [(rule, did, sid) for rule, did, sid in rows]


@pytest.mark.usefixtures("covered")
def test_a_subscribed_owner_is_told_of_every_step_once(
    client: TestClient, container: Container, picc: InsurerAccount, env: dict[str, str]
) -> None:
    sub = client.post(
        "/v1/subscriptions", json={**OWNER, "channel": "email", "address": "o@example.com"}
    )
    assert sub.status_code == 201
    sid = sub.json()["subscription_id"]
    first, second = filed(client), filed(client, kind="wrong_data")  # one policy, two disputes
    escalate(env, DUE)
    escalate(env, DUE)
    picc.api.resolve_dispute(first["dispute_id"], "rejected", "续保记录属实无误")

    a, b = first["dispute_id"], second["dispute_id"]
    assert sorted(outbox_rows(container)) == sorted(
        [
            ("dispute_opened", a, sid),
            ("dispute_opened", b, sid),
            ("dispute_escalated", a, sid),
            ("dispute_escalated", b, sid),
            ("dispute_resolved", a, sid),
        ]
    )

    # The outbox hands them out with what the templates need (a renewal never cancels them).
    claimed = container.reminder_outbox().claim(
        NOW + timedelta(days=14), 10, "t", timedelta(minutes=5)
    )
    assert sorted((m.kind, m.dispute_id) for m in claimed) == sorted(
        [
            ("dispute_opened", a),
            ("dispute_opened", b),
            ("dispute_escalated", a),
            ("dispute_escalated", b),
            ("dispute_resolved", a),
        ]
    )
    resolved = next(m for m in claimed if m.kind == "dispute_resolved")
    assert resolved.dispute_outcome == "rejected" and resolved.plate == "苏E·12345"
    mail = render_email(resolved)
    assert f"（编号 {a}）" in mail.subject and "未予更正" in mail.subject
    assert "o@example.com" not in mail.text and resolved.unsubscribe_url in mail.text
    assert "2026-02-25 00:00" in render_short(
        next(m for m in claimed if m.kind == "dispute_opened")
    )
    hook = json.loads(webhook_body(resolved))
    assert hook["type"] == "dispute_update" and hook["dispute"]["dispute_id"] == str(a)


@pytest.mark.usefixtures("covered")
def test_every_step_is_in_the_access_log(
    client: TestClient, container: Container, picc: InsurerAccount, env: dict[str, str]
) -> None:
    made = filed(client)
    status_of(client, made["dispute_id"], made["token"])
    picc.api.disputes()
    escalate(env, DUE)
    regulator = bearer_headers(container.users.add("reg-001", "regulator"))
    client.get("/v1/disputes?status=escalated", headers=regulator)
    picc.api.resolve_dispute(made["dispute_id"], "corrected", "已补报")

    listed = client.post("/v1/coverage/access-log", json=OWNER)
    assert listed.status_code == 200
    seen = {(e["actor_role"], e["purpose"]) for e in listed.json()["entries"]}
    assert {
        ("owner", "dispute"),
        ("owner", "dispute_status"),
        ("insurer", "dispute_queue"),
        ("regulator", "dispute_escalation"),
        ("regulator", "dispute_oversight"),
        ("insurer", "dispute_resolution"),
    } <= seen
    table = access_log_table(container.engine)
    with container.engine.connect() as conn:
        actors = {r.actor for r in conn.execute(select(table.c.actor, table.c.purpose))}
    assert {"anonymous", "PICC", "reg-001", "ctplhub"} <= actors


@pytest.mark.usefixtures("covered")
def test_two_workers_escalating_at_once_escalate_each_dispute_once(
    client: TestClient, container: Container
) -> None:
    made = [filed(client)["dispute_id"] for _ in range(6)]
    service = container.disputes
    assert service is not None
    at = datetime.fromisoformat(DUE)
    start = threading.Barrier(2)

    def run() -> int:
        start.wait()
        return service.escalate(at).escalated

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(lambda _: run(), range(2)))
    assert sum(counts) == len(made)
    h = dispute_history.c
    with container.engine.connect() as conn:
        steps = conn.execute(select(h.dispute_id).where(h.status == "escalated")).scalars().all()
    assert sorted(steps) == made
    assert service.escalate(at).escalated == 0
