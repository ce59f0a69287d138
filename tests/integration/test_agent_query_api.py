"""POST /v1/agent/coverage-query: a hotline agent's verified query, access-logged with the
agent's name, role and reason (DESIGN §1, §5.3)."""

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


def test_an_agents_query_is_the_full_answer_and_is_logged_with_the_reason(
    client: TestClient, container: Container, agent: dict[str, str]
) -> None:
    body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "reason": "hotline"}
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


def test_an_agent_needs_a_factor_a_reason_and_the_agent_role(
    client: TestClient, agent: dict[str, str], police_token: str
) -> None:
    no_factor = client.post(PATH, json={"plate": "苏E12345", "reason": "hotline"}, headers=agent)
    assert (no_factor.status_code, no_factor.json()["error"]["code"]) == (400, "validation_failed")
    for reason in (None, "", "Hotline", "x" * 41, 7):
        body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "reason": reason}
        assert client.post(PATH, json=body, headers=agent).status_code == 400
    wrong = client.post(
        PATH, json={"plate": "苏E12345", "vin_last6": "000000", "reason": "hotline"}, headers=agent
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "not_found")
    good = {"plate": "苏E12345", "vin_last6": VIN[-6:], "reason": "hotline"}
    assert client.post(PATH, json=good).status_code == 401
    assert client.post(PATH, json=good, headers=bearer_headers(police_token)).status_code == 403
