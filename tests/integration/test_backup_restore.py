"""``ctplhub backup`` / ``ctplhub restore`` on both engines, run for real through Typer's
CliRunner: a restore into a fresh database holds the same data, which ``ctplhub ledger
audit`` proves (every leaf recomputed from the restored events, personal fields
decrypted with the restored data keys; the same root), also for a backup taken while
events are being written."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app
from ctplhub.config import Settings
from ctplhub.security.keystore import ensure_keys
from ctplhub.store.schema import make_engine
from helpers import event, postgres_database


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def env_of(url: str, home: Path) -> dict[str, str]:
    return {"CTPLHUB_DATABASE_URL": url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}


@pytest.fixture
def fresh_url(settings: Settings, tmp_path: Path, worker_id: str) -> Iterator[str]:
    """A database with nothing in it, on the engine of ``settings``."""
    if settings.database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'ctplhub.db'}"
        return
    with postgres_database(
        settings.database_url, f"ctplhub_restore_{worker_id}", revision=None
    ) as url:
        yield url


@pytest.fixture
def logged(container: Container) -> Container:
    container.insurers.add("PICC", "中国人保", actor="test")
    lines = [(i, event(policy_no=f"B{i:03d}", owner_name=f"王{i}")) for i in range(20)]
    list(container.report_events.report_many(lines, insurer_code="PICC"))
    return container


def audit(env: dict[str, str]) -> dict[str, object]:
    result = run(env, "ledger", "audit", "--workers", "0", "--json")
    assert result.exit_code == 0, result.output
    body: dict[str, object] = json.loads(result.stdout)
    return body


def test_a_restore_into_a_fresh_database_holds_the_same_ledger(
    logged: Container, settings: Settings, fresh_url: str, tmp_path: Path
) -> None:
    source = env_of(settings.database_url, settings.home)
    file = tmp_path / "ctplhub.backup"
    made = run(source, "backup", str(file), "--json")
    assert made.exit_code == 0, made.output
    manifest = json.loads(made.stdout)
    assert manifest["events"] == 20 and manifest["ledger"]["tree_size"] == 20
    before = audit(source)

    restored = run(env_of(fresh_url, settings.home), "restore", str(file), "--json")
    assert restored.exit_code == 0, restored.output
    body = json.loads(restored.stdout)
    assert body["verified"] is True and body["rows"] == manifest["rows"]
    after = audit(env_of(fresh_url, settings.home))
    assert after["clean"] is True and after["findings"] == []
    assert (after["root_hash"], after["leaves"]) == (before["root_hash"], before["leaves"])


def test_restore_refuses_a_database_with_data_unless_forced(
    logged: Container, settings: Settings, tmp_path: Path
) -> None:
    env = env_of(settings.database_url, settings.home)
    file = tmp_path / "ctplhub.backup"
    assert run(env, "backup", str(file)).exit_code == 0
    logged.report_events.report(event(policy_no="AFTER"), insurer_code="PICC")

    refused = run(env, "restore", str(file), "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["code"] == "restore_target_not_empty"
    logged.close()  # a restore is done with the servers stopped
    forced = run(env, "restore", str(file), "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["events"] == 20  # the event written after is gone
    assert audit(env)["clean"] is True


def test_restore_refuses_keys_that_cannot_read_the_data(
    logged: Container, settings: Settings, fresh_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "ctplhub.backup"
    assert run(env_of(settings.database_url, settings.home), "backup", str(file)).exit_code == 0
    other_home = tmp_path / "other-home"
    ensure_keys(other_home)
    refused = run(env_of(fresh_url, other_home), "restore", str(file), "--json")
    assert refused.exit_code == 1
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "backup_keys_missing" and "master/" in error["message"]
    assert not fresh_url.startswith("sqlite") or not Path(fresh_url[10:]).exists()


def test_a_backup_taken_while_events_are_written_is_consistent(
    logged: Container, settings: Settings, fresh_url: str, tmp_path: Path
) -> None:
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            batch = [(i, event(policy_no=f"W{n:04d}-{i}")) for i in range(5)]
            list(logged.report_events.report_many(batch, insurer_code="PICC"))
            n += 1
            written.append(n)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 3:  # writes are under way before the backup starts
            stop.wait(0.05)
        file = tmp_path / "ctplhub.backup"
        made = run(env_of(settings.database_url, settings.home), "backup", str(file), "--json")
        during = len(written)
    finally:
        stop.set()
        writer.join()
    assert made.exit_code == 0, made.output
    assert during > 3 or len(written) > during  # the writer did not wait for the backup

    env = env_of(fresh_url, settings.home)
    restored = run(env, "restore", str(file), "--json")
    assert restored.exit_code == 0, restored.output
    body = json.loads(restored.stdout)
    assert body["verified"] is True
    # Every event has its leaf: the copy is one instant, not a mix of two.
    assert (
        body["rows"]["policy_events"]
        == body["rows"]["ledger_leaves"]
        == body["ledger"]["tree_size"]
    )
    assert audit(env)["clean"] is True
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM policy_events")).scalar_one()
    finally:
        engine.dispose()
    assert stored == body["events"] >= 20 + 15


def test_restore_refuses_what_is_not_a_backup_of_its_engine(
    logged: Container, settings: Settings, fresh_url: str, tmp_path: Path
) -> None:
    env = env_of(fresh_url, settings.home)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a tar file")
    refused = run(env, "restore", str(junk), "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["code"] == "backup_unreadable"

    file = tmp_path / "ctplhub.backup"
    assert run(env_of(settings.database_url, settings.home), "backup", str(file)).exit_code == 0
    other = "postgresql://postgres@127.0.0.1:1/none" if "sqlite" in fresh_url else "sqlite://"
    mismatch = run(env_of(other, settings.home), "restore", str(file), "--json")
    assert mismatch.exit_code == 1
    assert json.loads(mismatch.stdout)["error"]["code"] == "backup_engine_mismatch"
