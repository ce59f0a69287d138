"""Migration 0013 on both engines: SQLite keeps the policy heads in their key's B-tree
(``WITHOUT ROWID``), so an insurer's book is read as one range; the closed-policy and
``effective_at`` indexes hold only the heads they are for, and the reminder queries
still use them. Up and down keep every head."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import Engine, select, text

from ctplhub.store.repositories.reconcile import SqlPolicyBook
from ctplhub.store.repositories.reminders import SqlReminderRepository
from ctplhub.store.schema import alembic_config, migrate
from ctplhub.store.tables import policies

BEFORE = "0012"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def heads(n: int) -> list[dict[str, Any]]:
    kinds = ["issue", "renew", "endorse", "surrender", "cancel"]
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        rows.append(
            {
                "insurer_code": "PICC" if i % 3 else "CPIC",
                "policy_no": f"P{(i * 7919) % n:06d}",  # stored out of number order
                "version": 1 + i % 4,
                "event_type": kind,
                "vin": f"VIN{i:014d}",
                "coverage_start": T0 + timedelta(days=i),
                "coverage_end": T0 + timedelta(days=365 + i),
                "effective_at": T0 + timedelta(days=100 + i) if kind == "surrender" else None,
                "event_id": i + 1,
            }
        )
    return rows


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = select(policies).order_by(policies.c.insurer_code, policies.c.policy_no)
        return [tuple(row) for row in conn.execute(query)]


def index_sql(engine: Engine, index: str) -> str:
    """The index's definition as the database keeps it."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        else:
            query = "SELECT pg_get_indexdef(CAST(:name AS regclass))"
        return str(conn.execute(text(query), {"name": index}).scalar())


def plan(engine: Engine, statement: Any) -> str:
    with engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            return " | ".join(str(row[-1]) for row in rows)
        conn.execute(text("SET enable_seqscan = off"))  # tiny table: is the index usable?
        return " | ".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {compiled}")))


def test_upgrade_keeps_every_head_and_downgrade_gives_them_back(blank: Engine) -> None:
    migrate(blank, BEFORE)
    rows = heads(300)
    with blank.begin() as conn:
        conn.execute(policies.insert(), rows)
    before = stored(blank)

    migrate(blank, "0013")
    assert stored(blank) == before
    if blank.dialect.name == "sqlite":
        with blank.connect() as conn:
            ddl = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'policies'")
            ).scalar()
        assert ddl is not None and ddl.rstrip().endswith("WITHOUT ROWID")
    closed = index_sql(blank, "ix_policies_closed").replace('"', "")
    assert "WHERE" in closed and "surrender" in closed and "cancel" in closed, closed
    assert "IS NOT NULL" in index_sql(blank, "ix_policies_effective_at")

    with blank.begin() as conn:  # new heads go in as before
        conn.execute(
            policies.insert(),
            {**heads(1)[0], "insurer_code": "PAIC", "policy_no": "NEW1"},
        )
    config = alembic_config()
    with blank.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)
    after = stored(blank)
    assert len(after) == 301 and [row for row in after if row[1] != "NEW1"] == before


def test_an_insurers_book_is_one_range_and_reminders_use_the_partial_indexes(
    blank: Engine,
) -> None:
    migrate(blank)
    with blank.begin() as conn:
        conn.execute(policies.insert(), heads(300))
    book = list(SqlPolicyBook(blank).versions("CPIC"))
    assert [number for number, _ in book] == sorted(number for number, _ in book)
    assert len(book) == 100

    with blank.connect() as conn:
        repository = SqlReminderRepository(conn)
        closings = repository._closings()  # the statement closed_near/closed_between extend
    closed_plan = plan(blank, closings)
    assert "ix_policies_closed" in closed_plan, closed_plan
    surrendered = select(policies.c.vin).where(
        policies.c.effective_at.between(T0, T0 + timedelta(days=200))
    )
    assert "ix_policies_effective_at" in plan(blank, surrendered)
    if blank.dialect.name == "sqlite":
        query = (
            select(policies.c.policy_no, policies.c.version)
            .where(policies.c.insurer_code == "CPIC")
            .order_by(policies.c.policy_no)
        )
        reading = plan(blank, query)
        assert "PRIMARY KEY" in reading and "TEMP B-TREE" not in reading, reading
