"""Initial schema: insurers, keys, users, policy events and heads, activity, nonces.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 11:58:54.502597
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "insurer_activity",
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("insurer_code", "minute", name=op.f("pk_insurer_activity")),
    )
    op.create_table(
        "insurers",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_insurers")),
    )
    op.create_table(
        "policies",
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("coverage_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("coverage_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("insurer_code", "policy_no", name=op.f("pk_policies")),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index("ix_policies_vin", ["vin"], unique=False)

    op.create_table(
        "policy_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("vehicle_type", sa.String(length=24), nullable=False),
        sa.Column("use_nature", sa.String(length=16), nullable=False),
        sa.Column("owner_id_type", sa.String(length=16), nullable=False),
        sa.Column("owner_name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("owner_id_enc", sa.LargeBinary(), nullable=False),
        sa.Column("owner_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("owner_id_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("coverage_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("coverage_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("premium", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("prior_policy_no", sa.String(length=40), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_events")),
        sa.UniqueConstraint("insurer_code", "policy_no", "version", name="uq_policy_events_key"),
    )
    with op.batch_alter_table("policy_events", schema=None) as batch_op:
        batch_op.create_index("ix_events_owner_bidx", ["owner_id_bidx"], unique=False)
        batch_op.create_index("ix_events_plate", ["plate", "occurred_at", "id"], unique=False)
        batch_op.create_index("ix_events_vin", ["vin", "occurred_at", "id"], unique=False)

    op.create_table(
        "request_nonces",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce", name=op.f("pk_request_nonces")),
    )
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_nonces_seen_at"), ["seen_at"], unique=False)

    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
    )
    op.create_table(
        "insurer_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["insurer_code"], ["insurers.code"], name=op.f("fk_insurer_keys_insurer_code_insurers")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_insurer_keys")),
    )
    with op.batch_alter_table("insurer_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_insurer_keys_insurer_code"), ["insurer_code"], unique=False
        )

    op.create_table(
        "insurer_status_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["insurer_code"],
            ["insurers.code"],
            name=op.f("fk_insurer_status_changes_insurer_code_insurers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurer_status_changes")),
    )
    with op.batch_alter_table("insurer_status_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_insurer_status_changes_insurer_code"), ["insurer_code"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("insurer_status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insurer_status_changes_insurer_code"))

    op.drop_table("insurer_status_changes")
    with op.batch_alter_table("insurer_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insurer_keys_insurer_code"))

    op.drop_table("insurer_keys")
    op.drop_table("users")
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_nonces_seen_at"))

    op.drop_table("request_nonces")
    with op.batch_alter_table("policy_events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_vin")
        batch_op.drop_index("ix_events_plate")
        batch_op.drop_index("ix_events_owner_bidx")

    op.drop_table("policy_events")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index("ix_policies_vin")

    op.drop_table("policies")
    op.drop_table("insurers")
    op.drop_table("insurer_activity")
