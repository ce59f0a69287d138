"""``ctplhub ledger audit`` / ``ledger tree-head``, the backfill ``ctplhub init`` runs for
events older than the ledger, and ``keys rotate`` re-sealing the ledger's salts, run for
real through Typer's CliRunner on both engines (DESIGN §6, §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from test_ledger_write import assert_log_is_whole
from typer.testing import CliRunner, Result

from ctplhub.bootstrap import Container, initialise
from ctplhub.cli.main import app
from ctplhub.config import Settings
from ctplhub.security.pii import FieldCipher
from ctplhub.store.tables import ledger_leaves, ledger_tree_heads
from helpers import event


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "CTPLHUB_DATABASE_URL": settings.database_url,
        "CTPLHUB_HOME": str(settings.home),
        "CTPLHUB_REDIS_URL": "",
    }


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def logged(container: Container) -> Container:
    container.insurers.add("PICC", "中国人保", actor="test")
    lines = [(i, event(policy_no=f"L{i:03d}")) for i in range(12)]
    list(container.report_events.report_many(lines, insurer_code="PICC"))
    return container


def test_audit_is_clean_then_names_the_tampered_entry(
    logged: Container, env: dict[str, str]
) -> None:
    clean = run(env, "ledger", "audit", "--json")
    assert clean.exit_code == 0, clean.output
    body = json.loads(clean.stdout)
    assert (body["clean"], body["leaves"], body["findings"]) == (True, 12, [])
    with logged.engine.begin() as conn:
        conn.execute(text("UPDATE policy_events SET region_code = '110000' WHERE id = 5"))
    dirty = run(env, "ledger", "audit", "--json")
    assert dirty.exit_code == 1
    (finding,) = json.loads(dirty.stdout)["findings"]
    assert finding["event_id"] == 5 and finding["kind"] == "altered"
    assert finding["leaf_index"] == 4 and "region_code" in finding["detail"]
    text_run = run(env, "ledger", "audit")  # for people: a table, and the same exit code
    assert text_run.exit_code == 1 and "region_code" in text_run.stderr


def test_tree_head_then_audit_since_it(
    logged: Container, env: dict[str, str], tmp_path: Path
) -> None:
    printed = run(env, "ledger", "tree-head")
    assert printed.exit_code == 0, printed.output
    saved = tmp_path / "head.json"
    saved.write_text(printed.stdout)
    head = json.loads(printed.stdout)
    assert head["tree_size"] == 12 and head["signature"]["alg"] == "Ed25519"
    logged.report_events.report(event(policy_no="LATER"), insurer_code="PICC")
    assert run(env, "ledger", "audit", "--since", str(saved)).exit_code == 0
    forged = {**head, "root_hash": "00" * 32}
    saved.write_text(json.dumps(forged))
    result = run(env, "ledger", "audit", "--since", str(saved), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["findings"][0]["subject"] == "since"
    saved.write_text("not json")
    assert run(env, "ledger", "audit", "--since", str(saved)).exit_code == 2


def test_tree_head_of_an_empty_ledger_says_so(container: Container, env: dict[str, str]) -> None:
    result = run(env, "ledger", "tree-head")
    assert result.exit_code == 1 and "empty" in result.stderr


def test_init_gives_leaves_to_events_older_than_the_ledger(
    logged: Container, env: dict[str, str], settings: Settings
) -> None:
    # A database from before migration 0006: events, no leaves.
    with logged.engine.begin() as conn:
        for table in ("ledger_leaves", "ledger_tree_heads"):
            conn.execute(text(f"DELETE FROM {table}"))
    assert run(env, "ledger", "audit").exit_code == 1  # every event lacks its leaf
    assert run(env, "init").exit_code == 0
    assert_log_is_whole(logged)
    with logged.engine.connect() as conn:
        order = conn.execute(
            select(ledger_leaves.c.event_id).order_by(ledger_leaves.c.leaf_index)
        ).scalars()
        assert list(order) == list(range(1, 13))  # in the order of the events' ids
    assert run(env, "ledger", "audit").exit_code == 0
    initialise(settings)  # again: nothing left to do
    with logged.engine.connect() as conn:
        heads = conn.execute(select(ledger_tree_heads.c.tree_size)).scalars().all()
    assert heads == [12]


def test_backfill_resumes_after_an_interruption(logged: Container) -> None:
    with logged.engine.begin() as conn:
        for table in ("ledger_leaves", "ledger_tree_heads"):
            conn.execute(text(f"DELETE FROM {table}"))
    from ctplhub.bootstrap import ledger_backfill
    from ctplhub.security.keystore import load_keys

    home = logged.settings.home
    keyring = logged.report_events._personal
    backfill = ledger_backfill(logged.engine, load_keys(home), keyring)  # type: ignore[arg-type]
    calls: list[int] = []

    def stop_after_one(n: int) -> None:
        calls.append(n)
        raise KeyboardInterrupt

    assert backfill.missing() == 12
    with pytest.raises(KeyboardInterrupt):
        backfill.run(batch_size=5, progress=stop_after_one)
    assert backfill.missing() == 7
    assert backfill.run(batch_size=5) == 7
    assert backfill.missing() == 0
    assert_log_is_whole(logged)


def test_keys_rotate_reseals_the_salts_and_receipts_stay_the_same(
    logged: Container, env: dict[str, str]
) -> None:
    before = logged.report_events.report(event(policy_no="L003"), insurer_code="PICC")[1]
    result = run(env, "keys", "rotate", "--json", "--settle", "0")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["complete"] and report["ledger_salts_resealed"] == 12
    with logged.engine.connect() as conn:
        blobs = conn.execute(select(ledger_leaves.c.salts_enc)).scalars().all()
    assert {FieldCipher.key_id_of(bytes(b)) for b in blobs} == {report["field_kid"]}
    after = logged.report_events.report(event(policy_no="L003"), insurer_code="PICC")[1]
    assert after == before and after.ledger is not None
    assert run(env, "ledger", "audit").exit_code == 0


def test_backfill_skips_windows_already_logged_and_reads_each_window_once(
    logged: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events logged and unlogged interleave (a backfill interrupted while servers went
    on ingesting): windows of ids that are wholly logged are skipped, not taken for the
    end, and every unlogged event gets exactly one leaf, in id order."""
    from ctplhub.bootstrap import ledger_backfill
    from ctplhub.security.keystore import load_keys
    from ctplhub.store import ledger_audit

    with logged.engine.begin() as conn:
        for table in ("ledger_leaves", "ledger_tree_heads"):
            conn.execute(text(f"DELETE FROM {table}"))
    keyring = logged.report_events._personal
    backfill = ledger_backfill(logged.engine, load_keys(logged.settings.home), keyring)  # type: ignore[arg-type]

    def stop(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill.run(batch_size=6, progress=stop)  # events 1-6 logged, 7-12 not
    lines = [(i, event(policy_no=f"N{i:03d}")) for i in range(3)]
    list(logged.report_events.report_many(lines, insurer_code="PICC"))  # events 13-15
    monkeypatch.setattr(ledger_audit, "_WINDOW", 3)  # windows [1-3] and [4-6]: all logged
    assert backfill.missing() == 6
    assert backfill.run(batch_size=2) == 6
    assert backfill.missing() == 0
    assert_log_is_whole(logged)
    with logged.engine.connect() as conn:
        order = conn.execute(
            select(ledger_leaves.c.event_id).order_by(ledger_leaves.c.leaf_index)
        ).scalars()
        assert list(order) == [*range(1, 7), 13, 14, 15, *range(7, 13)]
