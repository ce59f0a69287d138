"""Reporting delays by insurer and time of receipt (DESIGN §2.6, §10; issue 10 items 1, 3).

``ix_events_received_insurer`` on ``policy_events (received_at, insurer_code)``: sync
health reads the events an insurer reported in the last 24 h, late reports a month of
them; without it each read scanned every stored event (10 million at the target scale).

Time first, not insurer first: with ``insurer_code`` leading, PostgreSQL chose this index
for ingest's look-up of an insurer's policies by number (``insurer_code = ? AND policy_no
= ?``) over the unique key, scanning all of a new insurer's events per number
(``tests/integration/test_planner_statistics.py``). Led by ``received_at`` it serves only
time ranges, where the insurer is checked inside the index; and new entries go to its
right-hand edge, the cheapest insert a B-tree has.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_received_insurer", "policy_events", ["received_at", "insurer_code"])


def downgrade() -> None:
    op.drop_index("ix_events_received_insurer", table_name="policy_events")
