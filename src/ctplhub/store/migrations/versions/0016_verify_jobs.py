"""Verify jobs (DESIGN §11; issue 12 item 3): ``verify_jobs`` and their chunks.

A job is cut into chunks at upload (10,000 rows each by default); a runner (``ctplhub
serve`` in the background, ``ctplhub worker``) claims a chunk with a lease, answers it and
commits its answers with the job's progress in one transaction. The chunks' input and
answers are sealed blobs (they name plates and VINs); the input is deleted once answered.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "verify_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("owner_role", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("done_rows", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.Column("result_sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verify_jobs")),
    )
    op.create_table(
        "verify_job_chunks",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("input_enc", sa.LargeBinary(), nullable=True),
        sa.Column("result_enc", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["verify_jobs.id"], name=op.f("fk_verify_job_chunks_job_id_verify_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verify_job_chunks")),
        sa.UniqueConstraint("job_id", "chunk_no", name="uq_verify_job_chunks_job_chunk"),
    )
    op.create_index("ix_verify_job_chunks_state", "verify_job_chunks", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_verify_job_chunks_state", table_name="verify_job_chunks")
    op.drop_table("verify_job_chunks")
    op.drop_table("verify_jobs")
