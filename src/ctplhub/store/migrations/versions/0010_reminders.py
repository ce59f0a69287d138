"""Reminders (DESIGN §7): subscriptions, the outbox, and the policy indexes that find
what is due among millions of policies.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=False),
        sa.Column("address_bidx", sa.LargeBinary(length=33), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("token_salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("ended_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index("ix_subscriptions_vin", "subscriptions", ["vin"])
    op.create_table(
        "reminders",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("subscription_id", _ID64, nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("covered_until", _AT, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("due_at", _AT, nullable=False),
        sa.Column("next_attempt_at", _AT, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", _AT, nullable=True),
        sa.Column("sent_at", _AT, nullable=True),
        sa.Column("updated_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_reminders_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.UniqueConstraint(
            "insurer_code", "policy_no", "rule", "subscription_id", name="uq_reminders_key"
        ),
    )
    op.create_index("ix_reminders_due", "reminders", ["state", "next_attempt_at"])
    op.create_index("ix_reminders_subscription", "reminders", ["subscription_id"])
    op.create_index("ix_policies_coverage_end", "policies", ["coverage_end"])
    op.create_index("ix_policies_effective_at", "policies", ["effective_at"])
    op.create_index("ix_policies_closed", "policies", ["event_type", "vin"])


def downgrade() -> None:
    op.drop_index("ix_policies_closed", table_name="policies")
    op.drop_index("ix_policies_effective_at", table_name="policies")
    op.drop_index("ix_policies_coverage_end", table_name="policies")
    op.drop_table("reminders")
    op.drop_table("subscriptions")
