"""The access log's vehicle index keys on the first 8 bytes of the vehicle key alone
(``ix_access_log_vehicle_prefix``), instead of the whole key and the instant
(``ix_access_log_vehicle_at``), on both engines.

The vehicle keys are HMACs, so the entries of a batch land all over the index. An entry of
the old index carried 32 bytes of key and the instant (8 bytes on PostgreSQL, 26 of text
on SQLite); one of the new carries 8. Per 10,000 entries of a bulk verify (docs/
PERFORMANCE.md §19): on SQLite, where each page a batch changes is written to the
write-ahead log and copied back, the writer's CPU falls from ~240 ms to ~125 ms; on
PostgreSQL the index's insert cost from ~55 ms to ~25-35 ms, and a month's index is a
third of the size, so it stays in the buffer cache for three times the entries. The
owner's listing (``SqlAccessLogStore.newest``) finds a vehicle's entries by the prefix,
keeps those of the whole key and sorts them by instant: a vehicle has few entries, and
another vehicle's HMAC shares a 64-bit prefix about never.

SQLite: the index is in the log's own file (migration 0005), Alembic's revision in the
main file, and a transaction over two files in WAL mode is atomic in each, not across
them: ``IF [NOT] EXISTS`` lets a run stopped between the two simply run again.
PostgreSQL: the index of the partitioned ``access_log`` is built on every month at once
(one pass over the log, writers wait meanwhile); months attached later get it as they
get the others (``store/access_log_partitions.py``).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 06:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# store.repositories.access_log's listing repeats the expression exactly, literals
# included: neither engine would match a bound ``substr`` argument to the index.
_KEY_PREFIX = "substr(vehicle_key, 1, 8)"
_PREFIX = "ix_access_log_vehicle_prefix"
_WHOLE = "ix_access_log_vehicle_at"


def _where() -> str:
    """``audit.`` on SQLite (store.schema.ACCESS_LOG_SCHEMA as it is at this revision)."""
    return "audit." if op.get_bind().dialect.name == "sqlite" else ""


def upgrade() -> None:
    schema = _where()
    op.execute(f"CREATE INDEX IF NOT EXISTS {schema}{_PREFIX} ON access_log ({_KEY_PREFIX})")
    op.execute(f"DROP INDEX IF EXISTS {schema}{_WHOLE}")


def downgrade() -> None:
    schema = _where()
    op.execute(f"CREATE INDEX IF NOT EXISTS {schema}{_WHOLE} ON access_log (vehicle_key, at)")
    op.execute(f"DROP INDEX IF EXISTS {schema}{_PREFIX}")
