"""Migration 0015 on both engines: the register's table, insurers' claims phones and the
access log's accident reference come and go; rows already there are kept both ways (on
PostgreSQL the log's monthly partitions, on SQLite its attached file)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, inspect, select, text

from ctplhub.services.ports import AccessRow
from ctplhub.store.repositories.access_log import SqlAccessLogStore, access_log_table
from ctplhub.store.schema import ACCESS_LOG_SCHEMA, alembic_config, migrate
from ctplhub.store.tables import insurers

BEFORE = "0014"


def columns(engine: Engine, table: str) -> set[str]:
    schema = (
        ACCESS_LOG_SCHEMA if table == "access_log" and engine.dialect.name == "sqlite" else None
    )
    return {c["name"] for c in inspect(engine).get_columns(table, schema=schema)}


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_upgrade_and_downgrade_keep_what_was_there(blank: Engine) -> None:
    migrate(blank, BEFORE)
    at = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    with blank.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO insurers (code, name, status, status_changed_at, "
                "status_changed_by, created_at) "
                "VALUES ('PICC', '人保', 'certified', :at, 'cli', :at)"
            ),
            {"at": at if blank.dialect.name != "sqlite" else "2026-12-02 01:00:00"},
        )
    SqlAccessLogStore(blank).prepare(at)
    log = access_log_table(blank)
    # The row goes in as the writer of 0014 wrote it: the seven columns of then.
    with blank.begin() as conn:
        target = (
            f"{ACCESS_LOG_SCHEMA}.access_log" if blank.dialect.name == "sqlite" else "access_log"
        )
        conn.execute(
            text(
                f"INSERT INTO {target} (at, actor, actor_role, purpose, vehicle_key) "
                "VALUES (:at, 'anonymous', 'owner', 'coverage_query', :key)"
            ),
            {
                "at": at if blank.dialect.name != "sqlite" else "2026-12-02 01:00:00",
                "key": b"k" * 32,
            },
        )

    migrate(blank)
    assert {"reference", "reason"} <= columns(blank, "access_log")
    assert "claims_phone" in columns(blank, "insurers")
    assert "register_lines" in inspect(blank).get_table_names()
    with blank.connect() as conn:
        assert conn.execute(select(insurers.c.code, insurers.c.claims_phone)).all() == [
            ("PICC", None)
        ]
        assert conn.execute(select(log.c.purpose, log.c.reference)).all() == [
            ("coverage_query", None)
        ]
    # The writer of this revision stores a reference, into the existing month too.
    SqlAccessLogStore(blank).append(
        [AccessRow(at, "officer-1", "police", "accident", b"v" * 32, None, "A-1", "collision")]
    )
    with blank.connect() as conn:
        assert sorted(conn.execute(select(log.c.purpose, log.c.reference, log.c.reason))) == [
            ("accident", "A-1", "collision"),
            ("coverage_query", None, None),
        ]

    downgrade(blank, BEFORE)
    assert not {"reference", "reason"} & columns(blank, "access_log")
    assert "claims_phone" not in columns(blank, "insurers")
    assert "register_lines" not in inspect(blank).get_table_names()
    with blank.connect() as conn:
        target = (
            f"{ACCESS_LOG_SCHEMA}.access_log" if blank.dialect.name == "sqlite" else "access_log"
        )
        assert conn.execute(text(f"SELECT count(*) FROM {target}")).scalar_one() == 2
        assert conn.execute(text("SELECT code FROM insurers")).all() == [("PICC",)]
    migrate(blank)  # and up again
    assert "register_lines" in inspect(blank).get_table_names()
