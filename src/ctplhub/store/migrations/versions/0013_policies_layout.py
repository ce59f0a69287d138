"""The policy heads' layout: clustered on SQLite, two indexes partial on both engines.

- **SQLite: ``policies`` becomes a ``WITHOUT ROWID`` table**, its rows stored in the
  primary key's B-tree in ``(insurer_code, policy_no)`` order. An insurer's book is then
  one range of the file: reconciliation (DESIGN §10) streams a million heads from it in
  a second or two, where the rowid table took one random page read per head through the
  key's index (24 s for 1M heads when the 2.6 GB file was not in the page cache;
  docs/PERFORMANCE.md). Ingest's upsert of a head also touches one B-tree fewer.
- **``ix_policies_effective_at`` and ``ix_policies_closed`` become partial**: only
  surrenders carry ``effective_at``, and only surrenders and cancels are "closed", yet
  every head of the million had an entry in both (written at every upsert, and pages
  competing for the cache with the ones every answer reads). The reminder queries that
  use them name the same predicates (``store/repositories/reminders.py``), and a test
  reads the plans (``tests/integration/test_planner_statistics.py``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

EFFECTIVE = "effective_at IS NOT NULL"
CLOSED = "event_type IN ('surrender', 'cancel')"
_COLUMNS = (
    "insurer_code, policy_no, version, event_type, vin, coverage_start, coverage_end, "
    "effective_at, event_id"
)
_SQLITE_TABLE = """
CREATE TABLE {name} (
    insurer_code VARCHAR(20) NOT NULL,
    policy_no VARCHAR(40) NOT NULL,
    version INTEGER NOT NULL,
    event_type VARCHAR(16) NOT NULL,
    vin VARCHAR(17) NOT NULL,
    coverage_start DATETIME NOT NULL,
    coverage_end DATETIME NOT NULL,
    effective_at DATETIME,
    event_id BIGINT NOT NULL,
    CONSTRAINT pk_policies PRIMARY KEY (insurer_code, policy_no)
){options}
"""


def _indexes(partial: bool) -> None:
    effective = sa.text(EFFECTIVE) if partial else None
    closed = sa.text(CLOSED) if partial else None
    op.create_index(
        "ix_policies_effective_at",
        "policies",
        ["effective_at"],
        postgresql_where=effective,
        sqlite_where=effective,
    )
    op.create_index(
        "ix_policies_closed",
        "policies",
        ["event_type", "vin"],
        postgresql_where=closed,
        sqlite_where=closed,
    )


def _rebuild_sqlite(clustered: bool) -> None:
    """Copy the heads into a new table of the other kind; the indexes go with the old
    table and are made again on the new one."""
    op.execute(
        _SQLITE_TABLE.format(name="policies_next", options=" WITHOUT ROWID" if clustered else "")
    )
    op.execute(
        f"INSERT INTO policies_next ({_COLUMNS}) SELECT {_COLUMNS} FROM policies "
        "ORDER BY insurer_code, policy_no"
    )
    op.execute("DROP TABLE policies")
    op.execute("ALTER TABLE policies_next RENAME TO policies")
    op.create_index("ix_policies_vin", "policies", ["vin"])
    op.create_index("ix_policies_coverage_end", "policies", ["coverage_end"])
    _indexes(partial=clustered)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(clustered=True)
        return
    op.drop_index("ix_policies_closed", table_name="policies")
    op.drop_index("ix_policies_effective_at", table_name="policies")
    _indexes(partial=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(clustered=False)
        return
    op.drop_index("ix_policies_closed", table_name="policies")
    op.drop_index("ix_policies_effective_at", table_name="policies")
    _indexes(partial=False)
