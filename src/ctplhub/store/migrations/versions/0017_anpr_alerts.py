"""Roadside cameras (DESIGN §12; issue 14): ``anpr_alerts`` and ``anpr_reads_seen``.

- ``anpr_alerts``: an alert per uncovered vehicle seen (at most one per plate and region
  in any 24 h), kept 30 days; ``read_id`` unique, so two consumers cannot keep one read
  twice; ``published_at`` is null until the alert reached the broker, and a consumer
  sweeps the unpublished ones (partial index).
- ``anpr_reads_seen``: the ids (and times) of the reads that raised or could have raised
  an alert, so a repeated read changes nothing; purged with the alerts.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "anpr_alerts",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("read_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lapsed_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_anpr_alerts")),
        sa.UniqueConstraint("read_id", name=op.f("uq_anpr_alerts_read_id")),
    )
    op.create_index("ix_anpr_alerts_region_seen", "anpr_alerts", ["region_code", "seen_at"])
    op.create_index(
        "ix_anpr_alerts_plate_region_seen", "anpr_alerts", ["plate", "region_code", "seen_at"]
    )
    op.create_index("ix_anpr_alerts_seen_at", "anpr_alerts", ["seen_at"])
    op.create_index(
        "ix_anpr_alerts_unpublished",
        "anpr_alerts",
        ["created_at"],
        postgresql_where=_UNPUBLISHED,
        sqlite_where=_UNPUBLISHED,
    )
    op.create_table(
        "anpr_reads_seen",
        sa.Column("read_id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("read_id", name=op.f("pk_anpr_reads_seen")),
    )
    op.create_index("ix_anpr_reads_seen_seen_at", "anpr_reads_seen", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_anpr_reads_seen_seen_at", table_name="anpr_reads_seen")
    op.drop_table("anpr_reads_seen")
    op.drop_index("ix_anpr_alerts_unpublished", table_name="anpr_alerts")
    op.drop_index("ix_anpr_alerts_seen_at", table_name="anpr_alerts")
    op.drop_index("ix_anpr_alerts_plate_region_seen", table_name="anpr_alerts")
    op.drop_index("ix_anpr_alerts_region_seen", table_name="anpr_alerts")
    op.drop_table("anpr_alerts")
