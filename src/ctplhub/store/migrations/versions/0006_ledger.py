"""The tamper-evident ledger (DESIGN §6): leaves, stored subtree hashes, signed tree heads.

See ``store/tables.py`` for what each table holds. Existing events get no leaves here: a
registry that already holds events has them appended by ``ctplhub init`` right after it
migrates (``services/ledger_backfill.py``: in the order of their ids, a batch and a signed
tree head per transaction, resumable), so that the migration itself stays quick and never
signs anything. On SQLite the two index columns are INTEGER PRIMARY KEYs, i.e. the rowid
itself, so that neither table carries a second B-tree.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_leaves",
        sa.Column("leaf_index", _ID64, autoincrement=False, nullable=False),
        sa.Column("event_id", _ID64, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("salts_enc", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_ledger_leaves")),
        sa.UniqueConstraint("event_id", name=op.f("uq_ledger_leaves_event_id")),
    )
    op.create_table(
        "ledger_hashes",
        sa.Column("idx", _ID64, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_ledger_hashes")),
    )
    op.create_table(
        "ledger_tree_heads",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_ledger_tree_heads")),
    )


def downgrade() -> None:
    op.drop_table("ledger_tree_heads")
    op.drop_table("ledger_hashes")
    op.drop_table("ledger_leaves")
