"""Disputes (DESIGN §10; issue 10 item 5): ``disputes``, ``dispute_history``, and the
reminder outbox made able to carry a dispute's notices to the owner's subscription.

The outbox's key was (insurer_code, policy_no, rule, subscription_id): one row per
policy, rule and subscription. A dispute's notices are one per (dispute, step,
subscription), and two disputes may be about one policy, so the key gains
``dispute_id`` (0 for the policy reminders: NULLs never collide in a unique key on
either engine, which would let a policy reminder be queued twice). ``rule`` widens from
16 to 24 characters for ``dispute_escalated``. On SQLite both changes rebuild the table
(Alembic's batch mode: copy, drop, rename, in the migration's transaction); on
PostgreSQL they are an ADD COLUMN with a constant default and a VARCHAR widening (no
table rewrite either) and one new unique index.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)
_OLD_KEY = ["insurer_code", "policy_no", "rule", "subscription_id"]


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_enc", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("opened_at", _AT, nullable=False),
        sa.Column("due_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    op.create_index("ix_disputes_insurer_status", "disputes", ["insurer_code", "status", "id"])
    op.create_index("ix_disputes_status_due", "disputes", ["status", "due_at"])
    op.create_table(
        "dispute_history",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("dispute_id", _ID64, nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("note_enc", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dispute_id"],
            ["disputes.id"],
            name=op.f("fk_dispute_history_dispute_id_disputes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_history")),
    )
    op.create_index("ix_dispute_history_dispute", "dispute_history", ["dispute_id", "id"])
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(
            sa.Column("dispute_id", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.alter_column("rule", existing_type=sa.String(length=16), type_=sa.String(length=24))
        batch.drop_constraint("uq_reminders_key", type_="unique")
        batch.create_unique_constraint("uq_reminders_key", [*_OLD_KEY, "dispute_id"])


def downgrade() -> None:
    # A dispute's notices have no place in the old outbox: they go with the disputes.
    op.execute("DELETE FROM reminders WHERE dispute_id <> 0")
    with op.batch_alter_table("reminders") as batch:
        batch.drop_constraint("uq_reminders_key", type_="unique")
        batch.create_unique_constraint("uq_reminders_key", _OLD_KEY)
        batch.alter_column("rule", existing_type=sa.String(length=24), type_=sa.String(length=16))
        batch.drop_column("dispute_id")
    op.drop_index("ix_dispute_history_dispute", table_name="dispute_history")
    op.drop_table("dispute_history")
    op.drop_index("ix_disputes_status_due", table_name="disputes")
    op.drop_index("ix_disputes_insurer_status", table_name="disputes")
    op.drop_table("disputes")
