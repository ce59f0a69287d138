"""The ``ctplhub`` command, run for real through Typer's CliRunner (DESIGN §8).

Every command reads ``CTPLHUB_DATABASE_URL`` and ``CTPLHUB_HOME`` from the environment,
pointed here at the same database and keys as the ``container`` and ``client`` fixtures,
so what a command does can be checked through the API.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from ctplhub.bootstrap import Container, build_container
from ctplhub.cli import common as cli_common
from ctplhub.cli import main as cli_main
from ctplhub.cli.main import app
from ctplhub.client import CtplHubClient
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import policies, policy_events
from helpers import bearer_headers, copy_sqlite_database, event

Env = dict[str, str]
Run = Callable[..., Result]


def env_for(database_url: str, home: Path) -> Env:
    return {
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
    }


@pytest.fixture
def env(database_url: str, home: Path) -> Env:
    """The environment of the ``container`` fixture: same database, same keys."""
    return env_for(database_url, home)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Container]]:
    """Every container a command builds, through the real ``build_container``, so a
    test can check that the command closed its connections (and none leak if not)."""
    containers: list[Container] = []

    def build_and_keep(*args: Any, **kwargs: Any) -> Container:
        container = build_container(*args, **kwargs)
        containers.append(container)
        return container

    monkeypatch.setattr(cli_main, "build_container", build_and_keep)
    monkeypatch.setattr(cli_common, "build_container", build_and_keep)  # open_container
    yield containers
    for container in containers:
        container.close()


@pytest.fixture
def run(env: Env, built: list[Container]) -> Run:
    def invoke(*args: str, env_override: Env | None = None) -> Result:
        try:
            result = CliRunner().invoke(app, list(args), env=env_override or env)
        finally:
            while built:
                built.pop().close()
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def ndjson_file(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            text = line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
            handle.write(text + "\n")
    return path


# --- init --------------------------------------------------------------------------


def test_init_creates_keys_and_schema_and_is_idempotent(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "fresh-home"
    # A brand-new SQLite file; PostgreSQL's test database exists already (migrated).
    url = (
        f"sqlite:///{tmp_path / 'fresh.db'}" if database_url.startswith("sqlite") else database_url
    )
    fresh = env_for(url, home)

    first = run("init", env_override=fresh)

    assert first.exit_code == 0, first.output
    assert first.stderr.count("created key file") == 5
    key_files = sorted(p.name for p in (home / "keys").iterdir())
    assert key_files == [
        "access-log.key",
        "blind-index.key",
        "master-keys.json",
        "pii-keys.json",
        "signing-keys.json",
    ]
    keys_before = {name: (home / "keys" / name).read_bytes() for name in key_files}
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"insurers", "policy_events", "policies", "users"} <= tables

    second = run("init", env_override=fresh)

    assert second.exit_code == 0, second.output
    assert "created key file" not in second.stderr
    assert {n: (home / "keys" / n).read_bytes() for n in key_files} == keys_before


def test_commands_without_keys_exit_2_with_a_hint(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    result = run("insurer", "list", env_override=env_for(database_url, tmp_path / "empty"))

    assert result.exit_code == 2
    assert result.stderr.strip()


def test_commands_close_their_database_connections(env: Env, built: list[Container]) -> None:
    result = CliRunner().invoke(app, ["insurer", "list", "--json"], env=env)

    assert result.exit_code == 0, result.output
    assert built, "the command built no container"
    open_connections = sum(
        c.engine.pool.checkedin()  # type: ignore[attr-defined]
        for c in built
    )
    assert open_connections == 0


# --- insurers ------------------------------------------------------------------------


def test_insurer_add_prints_a_key_that_signs(run: Run, client: TestClient) -> None:
    result = run("insurer", "add", "PICC", "--name", "中国人保", "--json")

    assert result.exit_code == 0, result.output
    added = as_json(result)
    assert set(added) == {"insurer_code", "key_id", "secret"}
    assert added["insurer_code"] == "PICC"
    with CtplHubClient(
        "http://testserver", added["key_id"], added["secret"], transport=client._transport
    ) as api:
        assert api.heartbeat("PICC")["stale"] is False


def test_adding_an_insurer_twice_fails_with_insurer_exists(run: Run) -> None:
    run("insurer", "add", "PICC", "--name", "中国人保", "--json")

    again = run("insurer", "add", "picc", "--name", "中国人保", "--json")

    assert again.exit_code == 1
    assert as_json(again)["error"]["code"] == "insurer_exists"


def test_suspend_then_certify_changes_what_the_insurer_may_do(
    run: Run, client: TestClient, container: Container
) -> None:
    added = as_json(run("insurer", "add", "PICC", "--name", "中国人保", "--json"))
    api = CtplHubClient(
        "http://testserver", added["key_id"], added["secret"], transport=client._transport
    )

    suspended = run("insurer", "suspend", "PICC", "--reason", "audit", "--json")

    assert suspended.exit_code == 0, suspended.output
    assert as_json(suspended) == {"insurer_code": "PICC", "status": "suspended", "reason": "audit"}
    refused = api.request("POST", "/v1/insurers/PICC/heartbeat")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insurer_not_certified"

    certified = run("insurer", "certify", "PICC", "--reason", "audit passed", "--json")

    assert certified.exit_code == 0, certified.output
    assert [i.status for i in container.insurers.list()] == ["certified"]
    assert api.request("POST", "/v1/insurers/PICC/heartbeat").status_code == 200
    api.close()


def test_status_change_of_an_unknown_insurer_fails(run: Run) -> None:
    result = run("insurer", "revoke", "NOBODY", "--reason", "x", "--json")

    assert result.exit_code == 1
    assert as_json(result)["error"]["code"] == "unknown_insurer"


# --- users ---------------------------------------------------------------------------


def test_user_add_prints_a_token_that_works_for_verify(run: Run, client: TestClient) -> None:
    result = run("user", "add", "officer-1", "--role", "police", "--json")

    assert result.exit_code == 0, result.output
    made = as_json(result)
    assert (made["user"], made["role"]) == ("officer-1", "police")
    answer = client.post(
        "/v1/coverage/verify",
        json={"items": [{"plate": "苏E12345"}]},
        headers=bearer_headers(made["token"]),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["status"] == "NO_RECORD"


def test_user_add_with_a_bad_role_fails(run: Run) -> None:
    result = run("user", "add", "someone", "--role", "owner", "--json")

    assert result.exit_code == 1
    assert as_json(result)["error"]["code"] == "validation_failed"


# --- import --------------------------------------------------------------------------


@pytest.fixture
def registered(run: Run) -> None:
    assert run("insurer", "add", "PICC", "--name", "中国人保").exit_code == 0


def stored_keys(url: str) -> list[tuple[str, int]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(policy_events.c.policy_no, policy_events.c.version).order_by(
                    policy_events.c.policy_no, policy_events.c.version
                )
            ).all()
    finally:
        engine.dispose()
    return [(r[0], r[1]) for r in rows]


def heads(url: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    c = policies.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    c.insurer_code, c.policy_no, c.version, c.event_type, c.coverage_end
                ).order_by(c.policy_no)
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


@pytest.mark.usefixtures("registered")
def test_import_reports_rejected_lines_and_exits_1(
    run: Run, tmp_path: Path, database_url: str
) -> None:
    source = ndjson_file(
        tmp_path / "events.ndjson",
        [
            {k: v for k, v in event(policy_no="I1").items() if k != "insurer_code"},
            "{oops",
            event(policy_no="I2"),
            event(policy_no="I3", plate="XE12345"),
            event(policy_no="I4"),
        ],
    )
    errors = tmp_path / "rejected.ndjson"

    result = run("import", str(source), "--insurer", "PICC", "--errors", str(errors), "--json")

    assert result.exit_code == 1
    summary = as_json(result)
    assert (summary["accepted"], summary["duplicate"], summary["rejected"]) == (3, 0, 2)
    assert summary["insurer_code"] == "PICC"
    assert [(e["line"], e["error"]["code"]) for e in summary["errors"]] == [
        (2, "malformed_json"),
        (4, "invalid_plate"),
    ]
    written = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert written == summary["errors"]
    assert stored_keys(database_url) == [("I1", 1), ("I2", 1), ("I4", 1)]


@pytest.mark.usefixtures("registered")
def test_import_of_a_csv_file(run: Run, tmp_path: Path, database_url: str) -> None:
    fields = [f for f in event() if f != "insurer_code"]  # --insurer names it
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for no in ("K1", "K2"):
        writer.writerow([event(policy_no=no)[f] for f in fields])
    source = tmp_path / "events.csv"
    source.write_text(out.getvalue(), encoding="utf-8")

    result = run("import", str(source), "--insurer", "PICC", "--json")

    assert result.exit_code == 0, result.output
    assert (as_json(result)["accepted"], as_json(result)["rejected"]) == (2, 0)
    assert stored_keys(database_url) == [("K1", 1), ("K2", 1)]


def test_import_for_an_unknown_insurer_fails(run: Run, tmp_path: Path) -> None:
    source = ndjson_file(tmp_path / "events.ndjson", [event()])

    result = run("import", str(source), "--insurer", "NOBODY", "--json")

    assert result.exit_code == 1
    assert as_json(result)["error"]["code"] == "unknown_insurer"


def test_import_of_a_missing_file_exits_2(run: Run, tmp_path: Path) -> None:
    result = run("import", str(tmp_path / "nope.ndjson"), "--insurer", "PICC", "--json")

    assert result.exit_code == 2


def many_versions(policies_count: int) -> list[dict[str, Any] | str]:
    """Three versions per policy in three arrival orders, so order matters per policy."""
    lines: list[dict[str, Any] | str] = []
    for i in range(policies_count):
        no = f"W{i:04d}"
        v1 = event(policy_no=no)
        v2 = event(policy_no=no, version=2, event_type="endorse", plate="苏E54321")
        v3 = event(
            policy_no=no, version=3, event_type="endorse", coverage_end="2026-02-01T00:00:00+08:00"
        )
        if i % 3 == 0:
            lines += [v1, v2, v3]
        elif i % 3 == 1:
            lines += [v3, v1, v2]
        else:  # surrendered at version 2: version 3 after it is policy_closed
            v2 = event(
                policy_no=no,
                version=2,
                event_type="surrender",
                effective_at="2025-06-01T00:00:00+08:00",
            )
            lines += [v1, v2, v3]
    return lines


def test_parallel_import_stores_what_a_sequential_import_stores(
    run: Run, env: Env, tmp_path: Path, database_url: str, sqlite_template: Path
) -> None:
    source = ndjson_file(tmp_path / "many.ndjson", [*many_versions(100), "{bad"])
    sequential_url = f"sqlite:///{tmp_path / 'sequential.db'}"
    copy_sqlite_database(sqlite_template, tmp_path / "sequential.db")
    sequential_env = {**env, "CTPLHUB_DATABASE_URL": sequential_url}
    for e in (env, sequential_env):
        assert run("insurer", "add", "PICC", "--name", "中国人保", env_override=e).exit_code == 0

    errors = tmp_path / "rejected.ndjson"
    parallel = run(
        "import",
        str(source),
        "--insurer",
        "PICC",
        "--workers",
        "2",
        "--errors",
        str(errors),
        "--json",
    )
    sequential = run(
        "import",
        str(source),
        "--insurer",
        "PICC",
        "--workers",
        "1",
        "--json",
        env_override=sequential_env,
    )

    assert parallel.exit_code == sequential.exit_code == 1
    p, s = as_json(parallel), as_json(sequential)
    assert p["workers"] == 2
    assert (p["accepted"], p["duplicate"], p["rejected"]) == (267, 0, 34)
    assert {k: p[k] for k in ("accepted", "duplicate", "rejected", "errors")} == {
        k: s[k] for k in ("accepted", "duplicate", "rejected", "errors")
    }
    assert stored_keys(database_url) == stored_keys(sequential_url)
    assert heads(database_url) == heads(sequential_url)
    assert {h[2:4] for h in heads(database_url)} == {(3, "endorse"), (2, "surrender")}
    # The summary shows the first 20 rejected lines; --errors holds all, in line order.
    written = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert [w["line"] for w in written] == [9 + 9 * k for k in range(33)] + [301]
    assert {w["error"]["code"] for w in written} == {"policy_closed", "malformed_json"}
    assert p["errors"] == written[:20]

    again = run("import", str(source), "--insurer", "PICC", "--workers", "2", "--json")

    again_summary = as_json(again)
    assert (again_summary["accepted"], again_summary["duplicate"]) == (0, 267)
    assert again_summary["rejected"] == 34
    assert len(stored_keys(database_url)) == 267


@pytest.mark.usefixtures("registered")
def test_import_of_a_csv_with_an_oversized_field_rejects_that_row_only(
    run: Run, tmp_path: Path
) -> None:
    fields = [f for f in event() if f != "insurer_code"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    writer.writerow([event(policy_no="K1")[f] for f in fields])
    writer.writerow([event(policy_no="K2", owner_name="x" * 140_000)[f] for f in fields])
    source = tmp_path / "events.csv"
    source.write_text(out.getvalue(), encoding="utf-8")

    result = run("import", str(source), "--insurer", "PICC", "--json")

    assert result.exit_code == 1
    assert (as_json(result)["accepted"], as_json(result)["rejected"]) == (1, 1)


# --- help ----------------------------------------------------------------------------


def test_root_help_lists_the_subcommands(run: Run) -> None:
    result = run("--help")

    assert result.exit_code == 0
    for command in ("init", "serve", "demo", "insurer", "user", "import"):
        assert command in result.stdout
    insurer_help = run("insurer", "--help").stdout
    for command in ("add", "suspend", "revoke", "certify", "list"):
        assert command in insurer_help
