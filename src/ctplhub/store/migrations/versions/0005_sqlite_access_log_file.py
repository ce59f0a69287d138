"""On SQLite, the access log moves to a file of its own (DESIGN §5.3).

The engine attaches ``<database>.access-log.db`` to every connection as the schema
``audit`` (``store/schema.py``); this moves ``access_log``, its rows, its index and its
three append-only triggers there, so that the log's INSERTs no longer grow the WAL of the
file the coverage readers read (docs/DECISIONS.md, "Access log"). PostgreSQL keeps its
layout: nothing happens there.

A transaction over two SQLite files in WAL mode is atomic in each file, not across them.
So the move is two transactions, in this order: the copy, committed and synced in the
target (``synchronous=FULL`` for that commit: ``NORMAL`` may lose a commit to a power
cut); then the source table dropped, with Alembic's bump of the revision. Upgrading, both
are in the main file, so stopped anywhere the main file still holds every row at
revision 0004: run it again, and the copy skips the ids already in the attached file (no
other writer touches that table meanwhile: the application writes the access log only
where the revision puts it). Downgrading, the drop in the attached file and the bump in
the main file may part: a table left behind there is a copy, whose ids the next upgrade
skips.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SCHEMA = "audit"  # store.schema.ACCESS_LOG_SCHEMA, as it was at this revision
_REFUSED = "access_log is append-only"
_COLUMNS = "id, at, actor, actor_role, purpose, vehicle_key, request_id"

# As migration 0002 made it on SQLite; ``id INTEGER`` with the primary key is the rowid.
_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.access_log (
    id INTEGER NOT NULL,
    at DATETIME NOT NULL,
    actor VARCHAR(100) NOT NULL,
    actor_role VARCHAR(16) NOT NULL,
    purpose VARCHAR(40) NOT NULL,
    vehicle_key BLOB NOT NULL,
    request_id VARCHAR(64),
    CONSTRAINT pk_access_log PRIMARY KEY (id)
)
"""
_INDEX = (
    "CREATE INDEX IF NOT EXISTS {schema}.ix_access_log_vehicle_at ON access_log (vehicle_key, at)"
)


def _triggers(schema: str) -> list[str]:
    """Migration 0002's triggers, made in ``schema``: a trigger of a schema other than
    ``temp`` fires on that schema's table, and its body reads that schema's tables."""
    triggers = [
        f"CREATE TRIGGER IF NOT EXISTS {schema}.access_log_no_{op_name.lower()} "
        f"BEFORE {op_name} ON access_log "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: {op_name} refused'); END"
        for op_name in ("UPDATE", "DELETE")
    ]
    # ``INSERT OR REPLACE`` deletes the old row without the delete trigger: refused alone.
    triggers.append(
        f"CREATE TRIGGER IF NOT EXISTS {schema}.access_log_no_replace BEFORE INSERT ON access_log "
        "WHEN EXISTS (SELECT 1 FROM access_log WHERE id = NEW.id) "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: REPLACE refused'); END"
    )
    return triggers


def _move(source: str, target: str) -> None:
    """The table, its rows, its index and triggers from schema ``source`` to ``target``."""
    bind = op.get_bind()
    attached = {row[1] for row in bind.exec_driver_sql("PRAGMA database_list")}
    if _SCHEMA not in attached:
        raise RuntimeError(
            "the access log's SQLite file is not attached: migrate through "
            "ctplhub.store.schema.make_engine (`ctplhub init`)"
        )
    # The driver's own transaction control (Python's sqlite3 begins before DML only):
    # earlier revisions of this run are complete, so committing them is safe.
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.commit()
    driver.execute(f"PRAGMA {target}.synchronous=FULL")  # never inside a transaction
    op.execute(_TABLE.format(schema=target))
    # Rows first, then the index and the triggers: the replace trigger would otherwise
    # look each copied id up.
    op.execute(
        f"INSERT INTO {target}.access_log ({_COLUMNS}) SELECT {_COLUMNS} FROM {source}.access_log "
        f"WHERE id NOT IN (SELECT id FROM {target}.access_log) ORDER BY id"
    )
    op.execute(_INDEX.format(schema=target))
    for trigger in _triggers(target):
        op.execute(trigger)
    driver.commit()
    driver.execute(f"PRAGMA {target}.synchronous=NORMAL")
    driver.execute("BEGIN")  # the drop and Alembic's bump of the revision: together
    op.execute(f"DROP TABLE {source}.access_log")  # its index and triggers with it


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _move("main", _SCHEMA)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _move(_SCHEMA, "main")
