"""A bulk load leaves the database ready: ``ctplhub import`` (and large batches) refresh
the planner statistics of the tables they changed, and right after an import the plate
query keeps to its indexes (PostgreSQL, checked with EXPLAIN)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.store.maintenance import SqlPlannerStatistics
from ctplhub.store.repositories.clauses import policy_lookup
from ctplhub.store.schema import make_engine
from ctplhub.store.statements import read_statements
from ctplhub.store.tables import policies, policy_events
from helpers import copy_sqlite_database, event, postgres_database


def fleet(n: int, *, first: int = 0) -> list[dict[str, Any]]:
    """``n`` vehicles of one event each, every one with its own plate and VIN."""
    return [
        event(
            policy_no=f"P{i:07d}",
            vin=with_vin_check_digit(f"LSVAU2180N{i:07d}"),
            plate=f"苏E{i % 100000:05d}" if i < 100_000 else f"苏A{i % 100000:05d}",
        )
        for i in range(first, first + n)
    ]


def test_a_load_refreshes_what_it_made_stale_and_nothing_else(container: Container) -> None:
    statistics = SqlPlannerStatistics(container.engine)
    container.insurers.add("PICC", "人保", actor="test")

    def load(first: int, n: int) -> int:
        events = enumerate(fleet(n, first=first), 1)
        results = container.report_events.report_many(events, insurer_code="PICC")
        assert {r.status for r in results} == {"accepted"}
        return n

    assert statistics.refresh(0) == []
    assert statistics.refresh(load(0, 400)) == ["policy_events", "policies"]  # none known
    assert statistics.refresh(load(400, 100)) == []  # 500 rows: not twice the 400 known
    assert statistics.refresh(load(500, 700)) == ["policy_events", "policies"]  # tripled
    assert statistics.refresh(load(1200, 50)) == []


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A database of its own, never analysed: what an operator starts from."""
    with postgres_database(postgres_url, postgres_url.rsplit("/", 1)[1] + "_fresh") as url:
        yield url


def import_fleet(url: str, home: Path, tmp_path: Path, vehicles: int) -> dict[str, Any]:
    """``ctplhub import`` of ``vehicles`` events for PICC (registered first); the
    command's JSON summary."""
    env = {"CTPLHUB_DATABASE_URL": url, "CTPLHUB_HOME": str(home)}
    runner = CliRunner()
    assert runner.invoke(app, ["insurer", "add", "PICC", "--name", "人保"], env=env).exit_code == 0
    source = tmp_path / "book.ndjson"
    source.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in fleet(vehicles)))
    imported = runner.invoke(app, ["import", str(source), "--insurer", "PICC", "--json"], env=env)
    assert imported.exit_code == 0, imported.output
    summary: dict[str, Any] = json.loads(imported.stdout)
    return summary


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_right_after_an_import_the_plate_query_uses_its_indexes(
    fresh_postgres: str, home: Path, tmp_path: Path
) -> None:
    summary = import_fleet(fresh_postgres, home, tmp_path, 3_000)

    assert summary["statistics_refreshed"] == ["policy_events", "policies"]
    with psycopg.connect(fresh_postgres, autocommit=True) as conn:
        analysed = dict(
            conn.execute(
                "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname IN ('policy_events', 'policies')"
            ).fetchall()
        )
        assert analysed == {"policy_events": True, "policies": True}
        # A plain session, the planner's defaults: no hints of ours.
        (plan,) = conn.execute(
            "EXPLAIN (FORMAT JSON) " + read_statements("postgresql").vehicles,
            {"plates": ["苏E00042"], "vins": []},
        ).fetchone()
    nodes = list(_plan_nodes(plan[0]["Plan"]))
    scans = {(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes}
    assert ("Index Scan", "policy_events", "ix_events_plate") in scans or (
        "Bitmap Index Scan",
        None,
        "ix_events_plate",
    ) in scans, scans
    assert not [s for s in scans if s[0] == "Seq Scan"], scans
    used = {n.get("Index Name") for n in nodes}
    assert {"ix_events_plate", "ix_events_vin", "ix_policies_vin"} <= used, used


def test_an_import_into_sqlite_leaves_statistics(
    sqlite_template: Path, home: Path, tmp_path: Path
) -> None:
    """The SQLite half (PostgreSQL is checked with EXPLAIN above): a new database file."""
    database = tmp_path / "fresh.db"
    copy_sqlite_database(sqlite_template, database)
    database_url = f"sqlite:///{database}"
    import_fleet(database_url, home, tmp_path, 500)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        tables = {row[0] for row in conn.execute(text("SELECT tbl FROM sqlite_stat1"))}
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                text("EXPLAIN QUERY PLAN " + read_statements("sqlite").vehicles),
                {"plates": '["苏E00042"]', "vins": "[]"},
            )
        )
    engine.dispose()
    assert {"policy_events", "policies"} <= tables
    assert "ix_events_plate" in plan and "ix_events_vin" in plan and "ix_policies_vin" in plan
    assert "SCAN policy_events" not in plan and "SCAN policies" not in plan, plan


def test_an_insurers_first_load_looks_policies_up_by_number_after_others_were_analysed(
    fresh_postgres: str, home: Path, tmp_path: Path
) -> None:
    """Statistics taken before an insurer's first load say it has no rows. The lookups
    of ingest must still probe the index by (insurer, number), not scan all of that
    insurer's rows and filter: that made every chunk of a load slower than the last."""
    import_fleet(fresh_postgres, home, tmp_path, 3_000)
    engine = make_engine(fresh_postgres)
    try:
        with engine.connect() as conn:
            for table, columns, lock in (
                (policy_events, ("policy_no", "version", "id"), False),
                (policies, ("policy_no", "version", "event_type"), True),
            ):
                lookup = policy_lookup(conn, table, columns, lock=lock)
                sql = str(lookup.compile(dialect=conn.dialect))
                params = {"insurer_code": "NEWCOMER", "values": [f"N{i}" for i in range(1_000)]}
                plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))
                assert "Nested Loop" in plan and "Hash" not in plan, plan
                probes = [line for line in plan.splitlines() if "Index Cond" in line]
                assert probes and all("policy_no" in line for line in probes), plan
    finally:
        engine.dispose()
