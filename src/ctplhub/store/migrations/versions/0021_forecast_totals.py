"""The lapse forecast's stored daily aggregate (issue 12): ``forecast_runs`` and
``forecast_totals``.

One run a Beijing day, keyed by its instant (the day's 00:00 Beijing): the run row is
the claim (two workers cannot both store a day), and the totals are the sums of that
day's expiring vehicles by group, key and the day of the window their cover ends in
(figures only: no vehicle, no plate).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 07:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "forecast_runs",
        sa.Column("as_of", _WHEN, nullable=False),
        sa.Column("computed_at", _WHEN, nullable=False),
        sa.Column("vehicles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("as_of", name=op.f("pk_forecast_runs")),
    )
    op.create_table(
        "forecast_totals",
        sa.Column("as_of", _WHEN, nullable=False),
        sa.Column("group_by", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=24), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("vehicles", sa.Integer(), nullable=False),
        sa.Column("risk_sum", sa.Float(), nullable=False),
        sa.Column("top_decile", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("as_of", "group_by", "key", "day", name=op.f("pk_forecast_totals")),
    )


def downgrade() -> None:
    op.drop_table("forecast_totals")
    op.drop_table("forecast_runs")
