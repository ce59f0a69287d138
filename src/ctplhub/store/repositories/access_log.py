"""The access log's rows (DESIGN §5.3): batches appended, one vehicle's entries listed.

``append`` is the writer's flush (``security/access_log.py``), run on a worker thread. A
batch is one transaction, and its values go to the driver as they are, without
SQLAlchemy's per-row bind processing: the flush shares the server process (and its GIL)
with the answer path, so its client CPU per entry is what counts.

- PostgreSQL: ONE binary ``COPY`` per batch (``store/pg_bulk.py``, as ingest does):
  0.7-0.9 µs of client CPU an entry, measured, against 10-20 µs for a multi-row
  ``INSERT`` (``VALUES`` lists or ``unnest`` arrays), whose parameters psycopg formats
  in Python. Into the parent of the monthly partitions (migration 0008), whose months
  ``store/access_log_partitions.py`` makes first when this process has not seen them.
- SQLite: one ``INSERT ... VALUES (...), (...)`` per chunk of up to 500 rows, its text
  built once per chunk size (the driver binds ``?`` in C; SQLite's own work runs without
  the GIL), into ``audit.access_log``: the access log's own file, attached by the engine
  (``store/schema.py``), not the file the coverage readers read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Connection, Engine, MetaData, Table, select

from ctplhub.services.ports import AccessEntry, AccessRow
from ctplhub.store.access_log_partitions import Months, month_of, next_month
from ctplhub.store.pg_bulk import CopyColumns, copy_in, driver_cursor
from ctplhub.store.schema import ACCESS_LOG_SCHEMA
from ctplhub.store.tables import access_log

_NAMES = AccessRow._fields  # the columns, in the order of a row
_COLUMNS = ", ".join(_NAMES)
# 8 parameters a row: 500 rows stay far below SQLite's 32,766 host parameters.
_CHUNK = 500
_SQLITE_TABLE = access_log.to_metadata(MetaData(), schema=ACCESS_LOG_SCHEMA)


def access_log_table(engine: Engine) -> Table:
    """Where ``engine``'s database keeps the access log: on SQLite in its own attached file
    (migration 0005), on PostgreSQL in ``access_log`` beside the other tables."""
    return _SQLITE_TABLE if engine.dialect.name == "sqlite" else access_log


@lru_cache(maxsize=8)
def _sqlite_insert(rows: int) -> str:
    row = "(" + ", ".join(["?"] * len(_NAMES)) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO {ACCESS_LOG_SCHEMA}.access_log ({_COLUMNS}) VALUES {values}"


def _sqlite_instant(at: datetime) -> str:
    """The text SQLAlchemy's SQLite ``DateTime`` stores (naive UTC, microseconds), so that
    ``UTCDateTime`` reads these rows back like any other."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


class SqlAccessLogStore:
    """Implements ``services.ports.AccessLogStore`` on both engines."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._table = access_log_table(engine)
        sqlite = engine.dialect.name == "sqlite"
        self._copy_columns = None if sqlite else CopyColumns.of(access_log, _NAMES)
        self._months = None if sqlite else Months(engine)

    def prepare(self, now: datetime) -> None:
        """Make the partitions of ``now``'s month and the next one, if missing (PostgreSQL;
        ``ctplhub init``), so that the writer need not make them on its path."""
        if self._months is not None:
            current = month_of(now)
            self._months.ensure([current, next_month(current)])

    def append(self, rows: Sequence[AccessRow]) -> None:
        """Write ``rows`` in one transaction: all or nothing, so the writer can retry a
        failed batch without writing any entry twice."""
        if not rows:
            return
        if self._copy_columns is None or self._months is None:
            with self._engine.begin() as conn:
                self._append_sqlite(conn, rows)
            return
        self._months.ensure_for(rows)  # a month made stays made, even if the COPY fails
        try:
            with self._engine.begin() as conn:
                copy_in(driver_cursor(conn), "access_log", self._copy_columns, rows)
        except Exception:
            self._months.forget()  # e.g. a month detached since: looked up again next time
            raise

    @staticmethod
    def _append_sqlite(conn: Connection, rows: Sequence[AccessRow]) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            params: list[object] = []
            for at, *rest in chunk:
                params.append(_sqlite_instant(at))
                params += rest
            conn.exec_driver_sql(_sqlite_insert(len(chunk)), tuple(params))

    def newest(self, vehicle_key: bytes, since: datetime, limit: int) -> list[AccessEntry]:
        c = self._table.c
        statement = (
            select(c.at, c.actor_role, c.purpose)
            .where(c.vehicle_key == vehicle_key, c.at >= since)
            .order_by(c.at.desc(), c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [AccessEntry(row[0], row[1], row[2]) for row in conn.execute(statement)]
