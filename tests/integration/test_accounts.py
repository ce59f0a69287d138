"""Accounts (issue 7 item 3): tokens that expire, `ctplhub user list|token|disable|enable`,
and a role check on every protected endpoint.

"Every process at once" is shown with two app instances (two containers, two clients)
on one database, standing in for two server processes: neither keeps a copy of an
account, so a change made through the command is refused by both from the next request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.cli.main import app as cli
from ctplhub.config import Settings
from ctplhub.services.users import ROLES
from ctplhub.store.tables import users
from helpers import Clock, bearer_headers

VERIFY = ("POST", "/v1/coverage/verify", {"items": [{"plate": "苏E12345"}]})


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "CTPLHUB_DATABASE_URL": settings.database_url,
        "CTPLHUB_HOME": str(settings.home),
        "CTPLHUB_REDIS_URL": "",
    }


def run(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env_of(settings), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def verify(client: TestClient, token: str) -> Any:
    method, path, body = VERIFY
    return client.request(method, path, json=body, headers=bearer_headers(token))


@pytest.fixture
def second(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """Another app instance on the same database: a second server process."""
    other = build_container(settings, clock=clock)
    try:
        with TestClient(build_app(other)) as client:
            yield client
    finally:
        other.close()


# --- expiry --------------------------------------------------------------------------


def test_token_expires_after_the_configured_days(
    container: Container, client: TestClient, clock: Clock
) -> None:
    issued = container.users.add_account("officer-9", "police")
    assert issued.expires_at == clock.now + timedelta(days=30)
    assert verify(client, issued.token).status_code == 200

    clock.advance(days=30, seconds=-1)
    assert verify(client, issued.token).status_code == 200
    clock.advance(seconds=1)
    answer = verify(client, issued.token)

    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "invalid_token"
    assert "expired" in error["message"]


def test_token_lifetime_is_a_setting(settings: Settings, clock: Clock) -> None:
    short = build_container(settings.model_copy(update={"token_ttl_days": 2}), clock=clock)
    try:
        issued = short.users.add_account("officer-2d", "police")
    finally:
        short.close()
    assert (issued.expires_at - clock.now).days == 2
    assert Settings().token_ttl_days == 30


# --- user token / disable / enable, seen by two processes ----------------------------


def test_user_token_revokes_the_old_token_in_every_process(
    settings: Settings, container: Container, client: TestClient, second: TestClient
) -> None:
    old = container.users.add("officer-1", "police")
    assert verify(client, old).status_code == 200
    assert verify(second, old).status_code == 200  # both processes have used it

    result = run(settings, "user", "token", "officer-1", "--json")

    assert result.exit_code == 0, result.output
    issued = json.loads(result.stdout)
    assert set(issued) == {"user", "role", "token", "expires_at"}
    assert (issued["user"], issued["role"]) == ("officer-1", "police")
    for app in (client, second):
        refused = verify(app, old)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_token"
        assert verify(app, issued["token"]).status_code == 200


def test_user_disable_ends_the_token_in_every_process_and_enable_needs_a_new_one(
    settings: Settings, container: Container, client: TestClient, second: TestClient
) -> None:
    token = container.users.add("officer-1", "police")
    assert verify(second, token).status_code == 200

    disabled = run(settings, "user", "disable", "officer-1", "--json")

    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.stdout)["disabled"] is True
    for app in (client, second):
        assert verify(app, token).status_code == 401
    refused = run(settings, "user", "token", "officer-1", "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["code"] == "validation_failed"

    enabled = run(settings, "user", "enable", "officer-1", "--json")
    assert enabled.exit_code == 0, enabled.output
    assert verify(client, token).status_code == 401  # the old token stays dead
    fresh = json.loads(run(settings, "user", "token", "officer-1", "--json").stdout)
    assert verify(second, fresh["token"]).status_code == 200


def test_user_list_shows_role_state_expiry_and_creation(
    settings: Settings, container: Container
) -> None:
    container.users.add("officer-1", "police")
    container.users.add("reg-1", "regulator")
    run(settings, "user", "disable", "reg-1")

    result = run(settings, "user", "list", "--json")

    assert result.exit_code == 0, result.output
    listed = {u["user"]: u for u in json.loads(result.stdout)["users"]}
    assert set(listed) == {"officer-1", "reg-1"}
    assert listed["officer-1"]["role"] == "police"
    assert listed["officer-1"]["disabled"] is False
    assert listed["reg-1"]["disabled"] is True
    assert listed["officer-1"]["token_expires_at"] > listed["officer-1"]["created_at"]
    # Disabling ended the token: its end is the moment of disabling.
    assert listed["reg-1"]["token_expires_at"] == listed["reg-1"]["disabled_at"]
    for entry in listed.values():
        assert "token" not in entry and "password_hash" not in entry
    table = run(settings, "user", "list")
    assert table.exit_code == 0
    assert "officer-1" in table.stdout and "disabled" in table.stdout


def test_user_add_keeps_its_contract_and_adds_the_expiry(settings: Settings) -> None:
    result = run(settings, "user", "add", "officer-7", "--role", "police", "--json")

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"user", "role", "token"} <= set(payload)
    assert payload["expires_at"]


def test_unknown_user_is_not_found(settings: Settings) -> None:
    for command in ("token", "disable", "enable"):
        result = run(settings, "user", command, "nobody", "--json")
        assert result.exit_code == 1
        assert json.loads(result.stdout)["error"]["code"] == "not_found"


def test_password_is_stored_only_as_an_argon2id_hash(
    settings: Settings, container: Container
) -> None:
    container.users.add("officer-1", "police")
    secret = "correct horse battery staple"

    result = run(settings, "user", "password", "officer-1", "--password-stdin", stdin=secret)
    too_short = run(settings, "user", "password", "officer-1", "--password-stdin", stdin="short")

    assert result.exit_code == 0, result.output
    assert too_short.exit_code == 1
    with container.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
        row = conn.execute(select(users)).one()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert all(secret not in str(value) for value in row)
    listed = json.loads(run(settings, "user", "list", "--json").stdout)["users"]
    assert listed[0]["password_set"] is True


def test_password_is_asked_twice_without_echo(settings: Settings, container: Container) -> None:
    container.users.add("officer-1", "police")
    secret = "another long passphrase"

    mismatch = run(settings, "user", "password", "officer-1", stdin=f"{secret}\nother\n")
    matched = run(settings, "user", "password", "officer-1", stdin=f"{secret}\n{secret}\n")

    assert mismatch.exit_code != 0
    assert matched.exit_code == 0, matched.output
    assert secret not in matched.output
    with container.engine.connect() as conn:
        assert conn.execute(select(users.c.password_hash)).scalar_one().startswith("$argon2id$")


# --- roles ---------------------------------------------------------------------------

# Every endpoint that takes a bearer token, with the roles that may call it.
PROTECTED: tuple[tuple[str, str, dict[str, Any] | None, tuple[str, ...]], ...] = (
    ("POST", "/v1/coverage/verify", {"items": [{"plate": "苏E12345"}]}, ("police", "regulator")),
    ("GET", "/v1/insurers/PICC/sync", None, ("regulator",)),
    (
        "POST",
        "/v1/agent/coverage-query",
        {"plate": "苏E12345", "vin_last6": "183294", "purpose": "hotline"},
        ("agent",),
    ),
)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), PROTECTED)
def test_each_protected_endpoint_refuses_every_other_role(
    container: Container,
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: tuple[str, ...],
) -> None:
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    for role in ROLES:
        token = container.users.add(f"{role}-1", role)
        answer = client.request(method, path, json=body, headers=bearer_headers(token))
        if role in allowed:  # past the role check: an answer, or "no such vehicle"
            assert answer.status_code in (200, 404), (role, answer.text)
            assert answer.status_code == 200 or answer.json()["error"]["code"] == "not_found"
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert answer.json()["error"]["code"] == "role_not_allowed"
    anonymous = client.request(method, path, json=body, headers=bearer_headers("ctp_nope"))
    assert anonymous.status_code == 401
