"""The vehicle register feed, insurers' claims phones, accident references in the access
log (DESIGN §11; issue 12 items 1, 2 and 4).

- ``register_lines``: every line the traffic-management system (车管所) fed, as history:
  one row per (VIN, ``as_of``). A vehicle's register status at ``t`` is that of its row
  with the latest ``as_of`` up to ``t``. ``ix_register_region_vin`` (region_code, vin)
  finds a region's vehicles in VIN order for the uninsured list; the unique key (vin,
  as_of) finds one vehicle's lines (docs/DECISIONS.md, "Vehicle register and daily
  match").
- ``insurers.claims_phone``: the number police give the other party after an accident
  (``ctplhub insurer add … --claims-phone``); null when unset.
- ``access_log.reference`` and ``access_log.reason``: an accident look-up's reference
  (the police case number) and reason code, kept in its access-log row. On SQLite the
  log is in the attached ``audit`` file (migration 0005); on PostgreSQL the columns are
  added to the partitioned parent, which adds them to every month (migration 0008), and
  months made later copy the parent (``CREATE TABLE … (LIKE access_log)``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Byte order on PostgreSQL too ("C"), so that the index's order is the list's VIN order
# and a region prefix is an index range, whatever the database's collation.
_VIN = sa.String(length=17).with_variant(sa.String(length=17, collation="C"), "postgresql")
_REGION = sa.String(length=6).with_variant(sa.String(length=6, collation="C"), "postgresql")
_AUDIT = "audit"  # store.schema.ACCESS_LOG_SCHEMA, as it is at this revision


def _access_log_schema() -> str | None:
    return _AUDIT if op.get_bind().dialect.name == "sqlite" else None


def upgrade() -> None:
    op.create_table(
        "register_lines",
        sa.Column("id", _ID64, autoincrement=True, nullable=False),
        sa.Column("vin", _VIN, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("vehicle_type", sa.String(length=24), nullable=False),
        sa.Column("region_code", _REGION, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_lines")),
        sa.UniqueConstraint("vin", "as_of", name="uq_register_lines_vin_as_of"),
    )
    op.create_index("ix_register_region_vin", "register_lines", ["region_code", "vin"])
    op.add_column("insurers", sa.Column("claims_phone", sa.String(length=20), nullable=True))
    schema = _access_log_schema()
    op.add_column(
        "access_log", sa.Column("reference", sa.String(length=64), nullable=True), schema=schema
    )
    op.add_column(
        "access_log", sa.Column("reason", sa.String(length=40), nullable=True), schema=schema
    )


def downgrade() -> None:
    schema = _access_log_schema()
    if schema is None:
        op.drop_column("access_log", "reason")
        op.drop_column("access_log", "reference")
    else:  # SQLite ≥ 3.35 drops a column in place; the append-only triggers name neither
        op.execute(f"ALTER TABLE {schema}.access_log DROP COLUMN reason")
        op.execute(f"ALTER TABLE {schema}.access_log DROP COLUMN reference")
    # In place on both engines (SQLite ≥ 3.35): no copy of a table others point at.
    op.execute("ALTER TABLE insurers DROP COLUMN claims_phone")
    op.drop_index("ix_register_region_vin", table_name="register_lines")
    op.drop_table("register_lines")
