"""Migration 0005 on SQLite: an existing access log moves, rows and append-only triggers
included, into the log's own file; run again after an interruption it neither loses nor
doubles a row, and its downgrade brings the rows back. (It does nothing on PostgreSQL:
test_access_log_store.py runs there with the table where migration 0002 put it.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from ctplhub.store.schema import access_log_file, alembic_config, make_engine, migrate
from helpers import access_log_indexes

ROWS = [
    (1, "2026-11-01 08:00:00.000000", "anonymous", "owner", "coverage_query", b"\x01" * 32, None),
    (2, "2026-11-02 08:00:00.000000", "officer-1", "police", "bulk_verify", b"\x02" * 32, "r-2"),
    (3, "2026-11-03 08:00:00.000000", "agent-042", "agent", "hotline", b"\x01" * 32, "r-3"),
]
INSERT = (
    "INSERT INTO {table} (id, at, actor, actor_role, purpose, vehicle_key, request_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "ctplhub.db"


@pytest.fixture
def engine(database: Path) -> Iterator[Engine]:
    """An SQLite database at revision 0004 whose access log holds ``ROWS``."""
    built = make_engine(f"sqlite:///{database}")
    migrate(built, "0004")
    with built.begin() as conn:
        conn.exec_driver_sql(INSERT.format(table="main.access_log"), ROWS)
    yield built
    built.dispose()


def rows_in_file(path: Path) -> list[tuple[object, ...]]:
    """The access log's rows as the file ``path`` holds them, read without the engine: the
    columns of 0005 (later migrations add some, e.g. 0015's accident reference)."""
    with closing(sqlite3.connect(path)) as conn:
        query = (
            "SELECT id, at, actor, actor_role, purpose, vehicle_key, request_id "
            "FROM access_log ORDER BY id"
        )
        return [tuple(r) for r in conn.execute(query)]


def tables_in_file(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def triggers(engine: Engine, schema: str) -> set[str]:
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'trigger'"
        ).scalars()
        return set(found)


APPEND_ONLY = {"access_log_no_update", "access_log_no_delete", "access_log_no_replace"}


def test_upgrade_moves_the_rows_into_the_logs_own_file(engine: Engine, database: Path) -> None:
    migrate(engine)
    engine.dispose()  # everything on disk, nothing held back in a connection

    assert rows_in_file(access_log_file(database)) == ROWS
    assert "access_log" not in tables_in_file(database)
    assert triggers(engine, "audit") == APPEND_ONLY
    assert triggers(engine, "main") == set()
    # 0005 moved ix_access_log_vehicle_at; 0022 replaced it by the key prefix's index.
    assert access_log_indexes(engine) == {
        "ix_access_log_vehicle_prefix": ["substr(vehicle_key, 1, 8)"]
    }
    refused = [
        "UPDATE audit.access_log SET actor_role = 'admin'",
        "DELETE FROM audit.access_log WHERE id = 2",
        "INSERT OR REPLACE INTO audit.access_log (id, at, actor, actor_role, purpose, "
        "vehicle_key) VALUES (1, '2026-01-01 00:00:00', 'x', 'owner', 'forged', x'00')",
    ]
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    # New entries follow the old ones.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO audit.access_log (at, actor, actor_role, purpose, vehicle_key) "
            "VALUES ('2026-11-04 08:00:00.000000', 'x', 'owner', 'coverage_query', x'03')"
        )
    assert [row[0] for row in rows_in_file(access_log_file(database))] == [1, 2, 3, 4]


def test_an_interrupted_upgrade_run_again_copies_each_row_once(
    engine: Engine, database: Path
) -> None:
    """What a stop between the migration's two transactions leaves: the table and its
    triggers in the log's file, the main file still at 0004 with every row; here with only
    some rows copied, so that the run again must copy the others and skip those."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE audit.access_log (id INTEGER NOT NULL, at DATETIME NOT NULL, "
            "actor VARCHAR(100) NOT NULL, actor_role VARCHAR(16) NOT NULL, "
            "purpose VARCHAR(40) NOT NULL, vehicle_key BLOB NOT NULL, "
            "request_id VARCHAR(64), CONSTRAINT pk_access_log PRIMARY KEY (id))"
        )
        conn.exec_driver_sql(INSERT.format(table="audit.access_log"), ROWS[:2])
        conn.exec_driver_sql(
            "CREATE TRIGGER audit.access_log_no_replace BEFORE INSERT ON access_log "
            "WHEN EXISTS (SELECT 1 FROM access_log WHERE id = NEW.id) "
            "BEGIN SELECT RAISE(ABORT, 'access_log is append-only: REPLACE refused'); END"
        )

    migrate(engine)
    engine.dispose()

    assert rows_in_file(access_log_file(database)) == ROWS
    assert "access_log" not in tables_in_file(database)
    assert triggers(engine, "audit") == APPEND_ONLY


def test_downgrade_brings_the_rows_back_to_the_main_file(engine: Engine, database: Path) -> None:
    migrate(engine)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    engine.dispose()

    assert rows_in_file(database) == ROWS
    assert "access_log" not in tables_in_file(access_log_file(database))
    assert triggers(engine, "main") == APPEND_ONLY


def test_a_migration_without_the_logs_file_attached_is_refused(
    engine: Engine, database: Path
) -> None:
    """Alembic run on an engine of its own (not ``make_engine``) would have nowhere to
    move the log: it stops, and the main file keeps the table."""
    bare = create_engine(f"sqlite:///{database}")
    try:
        with pytest.raises(RuntimeError, match="not attached"):
            migrate(bare)
    finally:
        bare.dispose()
    assert rows_in_file(database) == ROWS
