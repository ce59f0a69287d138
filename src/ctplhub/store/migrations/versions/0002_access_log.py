"""The append-only access log of reads of vehicles' data (DESIGN §5.3).

Append-only is the database's own rule, not only the application's: a trigger refuses
every ``UPDATE`` and ``DELETE`` of ``access_log`` on both engines, whoever sends it.
``TRUNCATE`` (PostgreSQL only) is left to privileges: the application's role needs no
``TRUNCATE`` right, and the test suite empties every table with it between tests
(docs/DECISIONS.md, "Access log").

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_REFUSED = "access_log is append-only"

_PG_FUNCTION = f"""
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_REFUSED}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# One statement-level trigger: it fires even when no row matches, so the refusal does
# not depend on what the statement would have touched.
_PG_TRIGGER = """
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()
"""


def _sqlite_trigger(operation: str) -> str:
    return (
        f"CREATE TRIGGER access_log_no_{operation.lower()} BEFORE {operation} ON access_log "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: {operation} refused'); END"
    )


# ``INSERT OR REPLACE`` of an existing id deletes the old row without firing the delete
# trigger (SQLite runs delete triggers for a REPLACE only under ``recursive_triggers``), so
# an insert that would meet an existing id is refused before it can replace anything.
_SQLITE_NO_REPLACE = (
    "CREATE TRIGGER access_log_no_replace BEFORE INSERT ON access_log "
    "WHEN EXISTS (SELECT 1 FROM access_log WHERE id = NEW.id) "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: REPLACE refused'); END"
)


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("vehicle_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_vehicle_at", "access_log", ["vehicle_key", "at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_sqlite_trigger("UPDATE"))
        op.execute(_sqlite_trigger("DELETE"))
        op.execute(_SQLITE_NO_REPLACE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS access_log_no_replace")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_delete")
    op.drop_index("ix_access_log_vehicle_at", table_name="access_log")
    op.drop_table("access_log")
