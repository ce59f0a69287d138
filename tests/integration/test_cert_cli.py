"""``ctplhub cert verify TOKEN`` (offline, against CTPLHUB_HOME's keys or a JWKS file) and
``ctplhub keys rotate-signing``, run for real through Typer's CliRunner (DESIGN §8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from ctplhub.cli.main import app
from ctplhub.security.keystore import load_keys
from helpers import VIN, Clock, InsurerAccount, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def token(client: TestClient, picc: InsurerAccount, clock: Clock) -> str:
    clock.now = NOW
    picc.api.report_event(
        event(
            policy_no="PDAA2026320500000001",
            coverage_start="2026-03-01T00:00:00+08:00",
            coverage_end="2027-03-01T00:00:00+08:00",
            occurred_at="2026-02-20T10:00:00+08:00",
        )
    )
    answer = client.post("/v1/certificates", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    assert answer.status_code == 201, answer.text
    issued: str = answer.json()["token"]
    return issued


def run(home: Path, database_url: str, *args: str) -> Result:
    env = {"CTPLHUB_HOME": str(home), "CTPLHUB_DATABASE_URL": database_url}
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def tampered(token: str) -> str:
    head, _, tail = token.partition(".")
    return f"{head}.{tail[1:]}{tail[0]}"


def test_a_valid_certificate_verifies_offline_with_exit_0(
    token: str, home: Path, database_url: str
) -> None:
    shown = run(home, database_url, "cert", "verify", token)
    as_json = run(home, database_url, "cert", "verify", token, "--json")

    assert shown.exit_code == 0, shown.output
    assert "valid" in shown.stderr and "苏E·12345" in shown.stderr
    assert as_json.exit_code == 0
    body = json.loads(as_json.stdout)
    assert body["valid"] is True
    assert body["certificate"]["plate"] == "苏E·12345"


def test_a_tampered_certificate_exits_1(token: str, home: Path, database_url: str) -> None:
    result = run(home, database_url, "cert", "verify", tampered(token), "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"valid": False, "certificate": None}


def test_a_malformed_token_exits_1_with_invalid_token(home: Path, database_url: str) -> None:
    result = run(home, database_url, "cert", "verify", "not-a-token", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "invalid_token"


def test_a_jwks_file_verifies_without_any_keys(
    token: str, client: TestClient, tmp_path: Path, database_url: str
) -> None:
    jwks = tmp_path / "keys.json"
    jwks.write_text(client.get("/.well-known/ctplhub-keys.json").text)
    nowhere = tmp_path / "no-home"

    ok = run(nowhere, database_url, "cert", "verify", token, "--jwks", str(jwks))
    bad = run(nowhere, database_url, "cert", "verify", tampered(token), "--jwks", str(jwks))

    assert ok.exit_code == 0, ok.output
    assert bad.exit_code == 1


def test_rotate_signing_issues_a_new_kid_and_old_certificates_still_verify(
    token: str, home: Path, database_url: str
) -> None:
    before = load_keys(home).active_signing_kid

    rotated = run(home, database_url, "keys", "rotate-signing", "--json")

    assert rotated.exit_code == 0, rotated.output
    body = json.loads(rotated.stdout)
    assert body["previous_kid"] == before
    assert body["kid"] != before
    assert set(body["kids"]) == {before, body["kid"]}
    assert body["restart_required"] is True
    assert load_keys(home).active_signing_kid == body["kid"]
    assert run(home, database_url, "cert", "verify", token).exit_code == 0
