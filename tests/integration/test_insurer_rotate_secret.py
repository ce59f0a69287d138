"""``ctplhub insurer rotate-secret CODE [--overlap DURATION]`` (DESIGN §5.1, §8).

The old secret keeps working until the overlap ends, by the server's clock (here a
hand-moved one), then answers ``401 unknown_key``; the new one works throughout. Both
engines; the command runs for real through Typer's CliRunner.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.keys import parse_duration
from ctplhub.cli.main import app
from ctplhub.client import CtplHubClient
from ctplhub.config import Settings
from ctplhub.domain.errors import UnknownInsurer, ValidationFailed
from ctplhub.security.pii import FieldCipher
from ctplhub.store.tables import insurer_keys
from helpers import Clock, InsurerAccount

SYNC = "/v1/insurers/PICC/sync"


def _client(client: TestClient, key_id: str, secret: str) -> CtplHubClient:
    return CtplHubClient("http://testserver", key_id, secret, transport=client._transport)


def _status(api: CtplHubClient) -> tuple[int, str | None]:
    response = api.request("GET", SYNC)
    code = response.json()["error"]["code"] if response.status_code != 200 else None
    return response.status_code, code


def test_old_and_new_secrets_overlap_then_only_the_new_one_works(
    container: Container, client: TestClient, picc: InsurerAccount, clock: Clock
) -> None:
    rotated = container.insurers.rotate_secret("picc", overlap=timedelta(hours=24))
    new = _client(client, rotated.key_id, rotated.secret)

    assert rotated.key_id != picc.key_id and rotated.secret != picc.secret
    assert rotated.old_key_ids == (picc.key_id,)
    assert rotated.old_keys_until == clock.now + timedelta(hours=24)
    assert _status(picc.api) == (200, None)
    assert _status(new) == (200, None)

    clock.advance(hours=23, minutes=59)
    assert _status(picc.api) == (200, None)

    clock.advance(minutes=1)  # the overlap is over
    assert _status(picc.api) == (401, "unknown_key")
    assert _status(new) == (200, None)
    new.close()


def test_no_overlap_refuses_the_old_secret_at_once(
    container: Container, client: TestClient, picc: InsurerAccount
) -> None:
    rotated = container.insurers.rotate_secret("PICC", overlap=timedelta(0))
    new = _client(client, rotated.key_id, rotated.secret)

    assert _status(picc.api) == (401, "unknown_key")
    assert _status(new) == (200, None)
    new.close()


def test_a_second_rotation_never_extends_an_older_key(
    container: Container, client: TestClient, picc: InsurerAccount, clock: Clock
) -> None:
    first = container.insurers.rotate_secret("PICC", overlap=timedelta(hours=1))
    clock.advance(minutes=30)
    second = container.insurers.rotate_secret("PICC", overlap=timedelta(hours=24))
    middle = _client(client, first.key_id, first.secret)

    assert second.old_key_ids == (first.key_id,)  # the original already ends sooner
    clock.advance(minutes=31)
    assert _status(picc.api) == (401, "unknown_key")
    assert _status(middle) == (200, None)
    clock.advance(hours=24)
    assert _status(middle) == (401, "unknown_key")
    assert _status(_client(client, second.key_id, second.secret)) == (200, None)
    middle.close()


def test_new_secret_is_stored_encrypted_only(container: Container, picc: InsurerAccount) -> None:
    rotated = container.insurers.rotate_secret("PICC", overlap=timedelta(hours=1))
    with container.engine.connect() as conn:
        rows = conn.execute(insurer_keys.select()).mappings().all()
    stored = {r["key_id"]: bytes(r["secret_enc"]) for r in rows}
    assert set(stored) == {picc.key_id, rotated.key_id}
    assert rotated.secret.encode() not in stored[rotated.key_id]
    FieldCipher.key_id_of(stored[rotated.key_id])  # a sealed blob, naming its key


def test_refusals(container: Container, picc: InsurerAccount) -> None:
    with pytest.raises(UnknownInsurer):
        container.insurers.rotate_secret("NOSUCH", overlap=timedelta(hours=1))
    with pytest.raises(ValidationFailed):
        container.insurers.rotate_secret("PICC", overlap=timedelta(seconds=-1))
    with pytest.raises(ValidationFailed):
        container.insurers.rotate_secret("PICC", overlap=timedelta(days=91))


def test_durations() -> None:
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("0") == timedelta(0)
    for bad in ("", "h", "24", "-1h", "1w", "2h1d"):
        with pytest.raises(typer.BadParameter):
            parse_duration(bad)


def test_the_command_prints_the_new_key_once(
    client: TestClient, picc: InsurerAccount, settings: Settings, home: Path
) -> None:
    env = {
        "CTPLHUB_DATABASE_URL": settings.database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
    }
    runner = CliRunner()
    result = runner.invoke(
        app, ["insurer", "rotate-secret", "PICC", "--overlap", "1h", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["insurer_code"] == "PICC" and printed["old_key_ids"] == [picc.key_id]
    new = _client(client, printed["key_id"], printed["secret"])
    assert _status(new) == (200, None)
    assert _status(picc.api) == (200, None)  # within the hour
    new.close()

    bad = runner.invoke(app, ["insurer", "rotate-secret", "PICC", "--overlap", "soon"], env=env)
    assert bad.exit_code == 2
    unknown = runner.invoke(app, ["insurer", "rotate-secret", "NOPE", "--json"], env=env)
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout)["error"]["code"] == "unknown_insurer"
