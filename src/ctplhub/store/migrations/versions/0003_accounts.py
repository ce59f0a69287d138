"""Accounts: token expiry, disabling, staff passwords and sessions (DESIGN §1, §5).

Tokens issued before this revision had no end: they are given the default 30 days from
the migration, so that none stays valid for ever and none stops working the moment the
schema is upgraded.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_EXISTING_TOKENS_LAST = timedelta(days=30)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_expires_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
    until = datetime.now(UTC) + _EXISTING_TOKENS_LAST
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # SQLite keeps naive UTC (store.tables.UTCDateTime)
        until = until.replace(tzinfo=None)
    bind.execute(sa.text("UPDATE users SET token_expires_at = :until"), {"until": until})
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "token_expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )

    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_staff_sessions")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_staff_sessions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_staff_sessions_user_id"))
    op.drop_table("staff_sessions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_hash")
        batch_op.drop_column("token_expires_at")
