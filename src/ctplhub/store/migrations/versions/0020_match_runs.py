"""The scheduled daily match's runs (DESIGN §11; issue 12): ``match_runs``.

One row per Beijing day: the worker that claims the day inserts it (the primary key is
the date, so two workers cannot both run the day's match), and records when the match
ran, how long it took and its counts (no vehicle, no plate: figures only).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "match_runs",
        sa.Column("run_date", sa.String(length=10), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimed_until", _WHEN, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("uninsured", sa.Integer(), nullable=True),
        sa.Column("unmatched", sa.Integer(), nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("run_date", name=op.f("pk_match_runs")),
    )


def downgrade() -> None:
    op.drop_table("match_runs")
