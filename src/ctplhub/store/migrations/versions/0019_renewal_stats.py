"""Regulators' statistics (DESIGN §11; issue 12 item 5): aggregates kept up to date by
an incremental refresh, so that no request scans the policies.

- ``stats_watermark``: the id of the last event the refresh has taken into account (one
  row, ``renewals``, made here).
- ``stats_policies``: each policy's renewal outcome (``on_time``, ``late``,
  ``unrenewed``) and the Beijing day its cover ends; ``stats_vehicles``: each vehicle's
  last cover end. Both are what a refresh subtracts before adding a recomputed
  vehicle's new figures.
- ``stats_renewals`` (counts by day of cover end, insurer and region) and
  ``stats_last_cover`` (vehicles by last cover end, insurer and region): what the
  statistics endpoints read (docs/DECISIONS.md, "Statistics for regulators").

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stats_watermark",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", _INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_watermark")),
    )
    op.create_table(
        "stats_policies",
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("end_day", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("insurer_code", "policy_no", name=op.f("pk_stats_policies")),
    )
    op.create_index("ix_stats_policies_vin", "stats_policies", ["vin"])
    # The watermark's one row, so that every refresh starts by locking it.
    op.execute("INSERT INTO stats_watermark (name, last_event_id) VALUES ('renewals', 0)")
    op.create_table(
        "stats_vehicles",
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("last_end", _INSTANT, nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("vin", name=op.f("pk_stats_vehicles")),
    )
    op.create_table(
        "stats_renewals",
        sa.Column("end_day", sa.String(length=10), nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("unrenewed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "end_day", "insurer_code", "region_code", name=op.f("pk_stats_renewals")
        ),
    )
    op.create_table(
        "stats_last_cover",
        sa.Column("last_end", _INSTANT, nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("vehicles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "last_end", "insurer_code", "region_code", name=op.f("pk_stats_last_cover")
        ),
    )


def downgrade() -> None:
    for name in (
        "stats_last_cover",
        "stats_renewals",
        "stats_vehicles",
        "stats_policies",
        "stats_watermark",
    ):
        op.drop_table(name)
