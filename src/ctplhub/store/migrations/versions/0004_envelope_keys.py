"""Envelope keys for personal data and rotatable insurer secrets (DESIGN §5.3, §5.1).

Adds ``data_keys``: the wrapped data keys of field encryption and of the blind index.
Nothing else changes shape: a ciphertext already names its key id, a blind index names
its key by a one-byte prefix (legacy 32-byte indexes have none), and an insurer key's
``revoked_at`` may now lie in the future (the end of a rotation's overlap).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("master_kid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_data_keys")),
        sa.UniqueConstraint("purpose", "seq", name="uq_data_keys_purpose_seq"),
    )


def downgrade() -> None:
    op.drop_table("data_keys")
