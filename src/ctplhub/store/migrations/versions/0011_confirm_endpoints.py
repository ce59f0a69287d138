"""Live confirmation endpoints and data-quality flags (DESIGN §10; issue 10 items 4, 6).

- ``insurer_confirm_endpoints``: the URL an insurer registered with ``PUT
  /v1/insurers/{code}/confirm-endpoint``; one row per insurer, replaced on each PUT.
  A table of its own rather than a column on ``insurers``: the insurer table is read by
  every answer (``InsurerDirectory``) and its column list is shared by several readers.
- ``quality_flags``: what ingest noticed about an accepted event (a VIN whose plate
  changed without an endorsement, a plate on two vehicles at once, a period longer than
  the law allows, a premium far from the insurer's norm). The event is accepted all the
  same; the insurer lists its flags at ``GET /v1/insurers/{code}/flags``.

Revision ID: 0011
Revises: 0009 (0010 once issue 9's reminders are merged)
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "insurer_confirm_endpoints",
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["insurer_code"],
            ["insurers.code"],
            name=op.f("fk_insurer_confirm_endpoints_insurer_code_insurers"),
        ),
        sa.PrimaryKeyConstraint("insurer_code", name=op.f("pk_insurer_confirm_endpoints")),
    )
    op.create_table(
        "quality_flags",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_flags")),
    )
    op.create_index("ix_quality_flags_insurer_id", "quality_flags", ["insurer_code", "id"])


def downgrade() -> None:
    op.drop_index("ix_quality_flags_insurer_id", table_name="quality_flags")
    op.drop_table("quality_flags")
    op.drop_table("insurer_confirm_endpoints")
