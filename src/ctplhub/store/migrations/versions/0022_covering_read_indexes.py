"""Covering indexes for the coverage read on PostgreSQL (issue 6, bulk verify).

The read of a plate's vehicles (``store/statements.py``) looks plates up in
``ix_events_plate``, the vehicles' events in ``ix_events_vin`` and their policies in
``ix_policies_vin``, and took every other column it needs from the table pages: three
random page reads per vehicle, most of a 10,000-plate verify's PostgreSQL CPU. Each index
now carries those columns in its leaves (``INCLUDE``), so the read is index-only on
pages VACUUM has marked all-visible (``ctplhub import`` vacuums what it wrote). The key
columns and the names stay; SQLite has no ``INCLUDE`` and is unchanged.

Each index is built beside the old one, then swapped in, in the migration's transaction:
writes to the table wait while it builds (seconds a million rows).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 22:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# (index, table, key columns, included columns)
_INDEXES = (
    ("ix_events_plate", "policy_events", "plate, occurred_at, id", "vin"),
    ("ix_events_vin", "policy_events", "vin, occurred_at, id", "plate, owner_id_bidx"),
    (
        "ix_policies_vin",
        "policies",
        "vin",
        "insurer_code, policy_no, version, event_type, coverage_start, coverage_end, effective_at",
    ),
)


def _rebuild(include: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, keys, included in _INDEXES:
        extra = f" INCLUDE ({included})" if include else ""
        op.execute(f"CREATE INDEX {name}_next ON {table} ({keys}){extra}")
        op.execute(f"DROP INDEX {name}")
        op.execute(f"ALTER INDEX {name}_next RENAME TO {name}")


def upgrade() -> None:
    _rebuild(include=True)


def downgrade() -> None:
    _rebuild(include=False)
