"""On PostgreSQL, the access log becomes a table partitioned by month (DESIGN §5.3).

``access_log``'s ``(vehicle_key, at)`` index is keyed by an HMAC, so each insert lands on
a random leaf: past about a million rows the index and the table outgrew the buffer
cache and the verified query lost 13 % of its throughput to the log (docs/PERFORMANCE.md
§7). Partitioned by RANGE (``at``), one partition per calendar month of UTC named
``access_log_YYYY_MM`` (``store/access_log_partitions.py``), inserts touch only the
current month's small index, and the owner's listing (``at >= since``) reads only the
months it covers. SQLite keeps its layout (the log has a file of its own there,
migration 0005): nothing happens there.

What changes on PostgreSQL, and what does not:

- the same columns, types, defaults and ``id`` sequence (its ownership moves to the new
  table; its next value stays), every row with its ``id``;
- the primary key is ``(id, at)``: a partitioned table's unique keys must hold the
  partition key. Ids still come from the one sequence; the key's index costs little,
  each insert appending at its right edge;
- ``ix_access_log_vehicle_at`` is defined on the parent, so every partition has it,
  those made later too;
- a partition for every month that holds rows, and for the current and the next month;
  later months are made on demand by the writer and by ``ctplhub init``, all through
  the function ``access_log_make_month(date)`` made here: under an advisory lock (two
  processes meeting a new month make it once), ``CREATE TABLE ... (LIKE access_log)``
  then ``ATTACH PARTITION`` (a SHARE UPDATE EXCLUSIVE lock on the parent, which lets
  inserts and listings go on, where ``PARTITION OF`` would lock the whole log out), as
  ``SECURITY DEFINER``: attaching needs the parent's ownership, which the application's
  role should not have. No DEFAULT partition: it would block making a month that has
  rows in it;
- append-only: 0002's statement-level trigger stays on the parent (it refuses even an
  ``UPDATE`` or ``DELETE`` that matches no row), and a row-level ``BEFORE UPDATE OR
  DELETE`` trigger on the parent is cloned by PostgreSQL onto every partition, present
  and future, so a statement aimed at one partition (``UPDATE access_log_2026_12 ...``),
  which fires no trigger of the parent's, is refused at its first row. ``TRUNCATE`` of
  the parent still empties every partition (the test suite's reset).

The rows are copied before the indexes are built (a sorted build per partition, not a
million random inserts), in the migration's one transaction. The move holds an
exclusive lock on the log throughout: 4.6 s for 323,000 rows, measured.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:00:00
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = "id, at, actor, actor_role, purpose, vehicle_key, request_id"
_ASIDE = "access_log_unpartitioned"  # the old table while its rows move
_PARTITIONED = "access_log_partitioned"  # the same, downgrading

# 0002's function, which raises for any statement or row it is called for.
_STATEMENT_TRIGGER = """
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()
"""
_ROW_TRIGGER = """
CREATE TRIGGER access_log_append_only_rows BEFORE UPDATE OR DELETE ON access_log
FOR EACH ROW EXECUTE FUNCTION access_log_append_only()
"""
_INDEX = "CREATE INDEX ix_access_log_vehicle_at ON access_log (vehicle_key, at)"


# The month of ``day`` (UTC), unless it has its partition; true when made. The advisory
# lock's key is any constant every process shares (the ASCII of "ctpl_alm"); it is held
# until the caller's transaction ends. ``search_path`` is the migration's, fixed: a
# SECURITY DEFINER function must not resolve names through its caller's path.
_MAKE_MONTH = """
CREATE FUNCTION access_log_make_month(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    first date := date_trunc('month', day)::date;
    name text := 'access_log_' || to_char(first, 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(7166476517812300909);
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'access_log'::regclass
               AND inhrelid = to_regclass(name)) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I (LIKE access_log INCLUDING DEFAULTS)', name);
    EXECUTE format(
        'ALTER TABLE access_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name,
        to_char(first, 'YYYY-MM-DD 00:00:00+00'),
        to_char(first + interval '1 month', 'YYYY-MM-DD 00:00:00+00')
    );
    RETURN true;
END
$$
"""


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _set_aside(name: str) -> str:
    """Rename ``access_log``, its key and its index to ``name``'s; its id sequence."""
    op.execute(f"ALTER TABLE access_log RENAME TO {name}")
    op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT pk_access_log TO pk_{name}")
    op.execute(f"ALTER INDEX ix_access_log_vehicle_at RENAME TO ix_{name}_vehicle_at")
    sequence = op.get_bind().exec_driver_sql(f"SELECT pg_get_serial_sequence('{name}', 'id')")
    found: str = sequence.scalar_one()
    return found


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    sequence = _set_aside(_ASIDE)
    # The same columns, types, NOT NULLs and the id's default (the sequence's next value).
    op.execute(
        f"CREATE TABLE access_log (LIKE {_ASIDE} INCLUDING DEFAULTS) PARTITION BY RANGE (at)"
    )
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY access_log.id")
    held = bind.exec_driver_sql(
        f"SELECT DISTINCT CAST(date_trunc('month', at AT TIME ZONE 'UTC') AS date) FROM {_ASIDE}"
    ).scalars()
    now = datetime.now(UTC)
    current = date(now.year, now.month, 1)
    op.execute(_MAKE_MONTH)
    for month in sorted({*held, current, _next_month(current)}):
        bind.exec_driver_sql("SELECT access_log_make_month(%s)", (month,))
    op.execute(f"INSERT INTO access_log ({_COLUMNS}) SELECT {_COLUMNS} FROM {_ASIDE}")
    op.execute("ALTER TABLE access_log ADD CONSTRAINT pk_access_log PRIMARY KEY (id, at)")
    op.execute(_INDEX)
    op.execute(f"DROP TABLE {_ASIDE}")  # its trigger with it; 0002's function stays
    op.execute(_STATEMENT_TRIGGER)
    op.execute(_ROW_TRIGGER)
    op.execute("ANALYZE access_log")  # the partitions' and the parent's statistics


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    sequence = _set_aside(_PARTITIONED)
    op.execute(f"CREATE TABLE access_log (LIKE {_PARTITIONED} INCLUDING DEFAULTS)")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY access_log.id")
    op.execute(
        f"INSERT INTO access_log ({_COLUMNS}) SELECT {_COLUMNS} FROM {_PARTITIONED} ORDER BY id"
    )
    op.execute("ALTER TABLE access_log ADD CONSTRAINT pk_access_log PRIMARY KEY (id)")
    op.execute(_INDEX)
    op.execute(f"DROP TABLE {_PARTITIONED}")  # every partition with it
    op.execute("DROP FUNCTION IF EXISTS access_log_make_month(date)")
    op.execute(_STATEMENT_TRIGGER)
