"""Envelope keys for personal data and rotatable insurer secrets (DESIGN §5.3, §5.1).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
