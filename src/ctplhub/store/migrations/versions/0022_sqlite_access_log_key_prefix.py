"""On SQLite, the access log's vehicle index keys on the first 8 bytes of the vehicle key
alone (``ix_access_log_vehicle_prefix``), instead of the whole key and the instant
(``ix_access_log_vehicle_at``).

The vehicle keys are HMACs, so a batch of entries lands all over the index: each entry
changes a page of its own, and every page changed is written to the write-ahead log at the
commit and copied back at the checkpoint. An entry of the old index carried 32 bytes of
key and 26 of instant text; one of the new carries 8, so the index has a third of the
pages and a batch changes fewer of them. 10,000 entries of a bulk verify cost the writer
119 ms of CPU instead of 250 ms (docs/PERFORMANCE.md §19). The owner's listing
(``SqlAccessLogStore.newest``) finds a vehicle's entries by the prefix, keeps those of the
whole key and sorts them by instant: a vehicle has few entries, and the 64-bit prefix of
an HMAC is shared by another vehicle's about never.

PostgreSQL keeps ``ix_access_log_vehicle_at`` on its monthly partitions: there the same
change measured 10 % of the index's insert cost, not worth rebuilding the index of every
month (docs/DECISIONS.md).

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

_SCHEMA = "audit"  # store.schema.ACCESS_LOG_SCHEMA, as it is at this revision
# store.repositories.access_log.SQLITE_KEY_PREFIX: the listing's WHERE repeats it exactly,
# literals included, or SQLite would not match it to the index.
# IF [NOT] EXISTS: the index is in the log's file, Alembic's revision in the main file, and
# a transaction over two files in WAL mode is atomic in each, not across them (0005): a
# run stopped between the two is simply run again.
_PREFIX = (
    "CREATE INDEX IF NOT EXISTS {schema}.ix_access_log_vehicle_prefix "
    "ON access_log (substr(vehicle_key, 1, 8))"
)
_WHOLE = (
    "CREATE INDEX IF NOT EXISTS {schema}.ix_access_log_vehicle_at ON access_log (vehicle_key, at)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_PREFIX.format(schema=_SCHEMA))
        op.execute(f"DROP INDEX IF EXISTS {_SCHEMA}.ix_access_log_vehicle_at")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_WHOLE.format(schema=_SCHEMA))
        op.execute(f"DROP INDEX IF EXISTS {_SCHEMA}.ix_access_log_vehicle_prefix")
