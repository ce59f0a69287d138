"""POST /v1/agent/coverage-query: a hotline agent's verified query, access-logged with the
agent's name, role and purpose (DESIGN §1, §3, §5.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.security.answer_signing import verify_signed
from ctplhub.store.tables import access_log
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
PATH = "/v1/agent/coverage-query"


@pytest.fixture(autouse=True)
def vehicle(clock: Clock, picc: InsurerAccount) -> None:
    clock.now = NOW
    picc.api.report_event(
        event(
            coverage_start="2026-03-01T00:00:00+08:00",
            coverage_end="2027-03-01T00:00:00+08:00",
            occurred_at="2026-02-20T10:00:00+08:00",
        )
    )


@pytest.fixture
def agent(container: Container) -> dict[str, str]:
    return bearer_headers(container.users.add("agent-042", "agent"))


def test_an_agents_query_is_the_full_answer_and_is_logged_with_its_purpose(
    client: TestClient, container: Container, agent: dict[str, str]
) -> None:
    body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "purpose": "hotline"}
    answer = client.post(PATH, json=body, headers=agent)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ACTIVE"
    assert verify_signed(answer.json(), client.get("/.well-known/ctplhub-keys.json").json())
    listed = client.post(
        "/v1/coverage/access-log", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
    )
    assert listed.json()["entries"][1] == {
        "at": "2026-11-25T10:00:00+08:00",
        "actor_role": "agent",
        "purpose": "hotline",
    }
    with container.engine.connect() as conn:
        actors = conn.execute(select(access_log.c.actor, access_log.c.actor_role)).all()
    assert ("agent-042", "agent") in [tuple(a) for a in actors]
    with container.engine.connect() as conn:
        purposes = conn.execute(
            select(access_log.c.purpose).where(access_log.c.actor == "agent-042")
        ).all()
    assert [p for (p,) in purposes] == ["hotline"]


def test_an_agent_needs_a_factor_a_purpose_and_the_agent_role(
    client: TestClient, agent: dict[str, str], police_token: str
) -> None:
    no_factor = client.post(PATH, json={"plate": "苏E12345", "purpose": "hotline"}, headers=agent)
    assert (no_factor.status_code, no_factor.json()["error"]["code"]) == (400, "validation_failed")
    for purpose in (None, "", "Hotline", "x" * 41, "hot line", "hotline\n", 7):
        body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "purpose": purpose}
        refused = client.post(PATH, json=body, headers=agent)
        assert refused.status_code == 400, purpose
        assert refused.json()["error"]["details"][0]["field"] == "purpose"
    wrong = client.post(
        PATH, json={"plate": "苏E12345", "vin_last6": "000000", "purpose": "hotline"}, headers=agent
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "not_found")
    good = {"plate": "苏E12345", "vin_last6": VIN[-6:], "purpose": "hotline"}
    assert client.post(PATH, json=good).status_code == 401
    assert client.post(PATH, json=good, headers=bearer_headers(police_token)).status_code == 403


def test_the_old_reason_field_is_not_a_purpose(
    client: TestClient, container: Container, agent: dict[str, str]
) -> None:
    """DESIGN §3 names the field ``purpose``; ``reason`` was never shipped, so it is an
    unknown field, not an alias."""
    body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "reason": "hotline"}
    refused = client.post(PATH, json=body, headers=agent)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "validation_failed"
    assert refused.json()["error"]["details"][0]["field"] == "purpose"
    both = client.post(PATH, json={**body, "purpose": "hotline"}, headers=agent)
    assert both.status_code == 400
    assert {"field": "reason", "problem": "Extra inputs are not permitted"} in both.json()["error"][
        "details"
    ]
    container.access_log.flush_now()
    with container.engine.connect() as conn:
        assert conn.execute(select(access_log)).all() == []


def test_the_published_body_names_purpose_not_reason(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    body = document["components"]["schemas"]["AgentQueryBody"]
    assert "purpose" in body["required"]
    assert "reason" not in body["properties"]
    assert body["properties"]["purpose"]["pattern"] == "^[a-z][a-z0-9_]{1,39}$"
