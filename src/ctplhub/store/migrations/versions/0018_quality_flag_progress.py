"""Data-quality flags leave the ingest path (issue 6): ``quality_flag_progress``.

The flags pass ran after every ingest chunk's commit and was about a quarter of
PostgreSQL's ingest work (docs/PERFORMANCE.md §12). It now runs in the worker over what
the ledger gained since a watermark: this table's one row, ``next_leaf``. Events stored
before this migration were flagged on ingest, so the watermark starts after them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_flag_progress",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("next_leaf", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_quality_flag_progress")),
    )
    op.execute(
        "INSERT INTO quality_flag_progress (name, next_leaf) "
        "SELECT 'ledger', COALESCE(MAX(leaf_index) + 1, 0) FROM ledger_leaves"
    )


def downgrade() -> None:
    op.drop_table("quality_flag_progress")
