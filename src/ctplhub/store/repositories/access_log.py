"""The access log's rows (DESIGN §5.3): batches appended, one vehicle's entries listed.

``append`` is the writer's flush (``security/access_log.py``), run on a worker thread. A
batch is one transaction, and its values go to the driver as they are, without
SQLAlchemy's per-row bind processing: the flush shares the server process (and its GIL)
with the answer path, so its client CPU per entry is what counts.

- PostgreSQL: ONE binary ``COPY`` per batch, against 10-20 µs an entry for a multi-row
  ``INSERT`` (``VALUES`` lists or ``unnest`` arrays), whose parameters psycopg formats
  in Python. Its bytes are built here (``copy_payload``), not row by row through
  psycopg's ``write_row``: entries share most of their columns (those of one bulk verify,
  10,000 at once, all but the vehicle), so each distinct value is encoded once and a row
  costs a few byte joins (docs/PERFORMANCE.md §17). Into the parent of the
  monthly partitions (migration 0008), whose months ``store/access_log_partitions.py``
  makes first when this process has not seen them.
- SQLite: one ``INSERT ... VALUES (...), (...)`` per chunk of up to 500 rows, its text
  built once per chunk size (the driver binds ``?`` in C; SQLite's own work runs without
  the GIL), into ``audit.access_log``: the access log's own file, attached by the engine
  (``store/schema.py``), not the file the coverage readers read.

On both, the vehicle index keys on the first 8 bytes of the vehicle key (migration 0022):
a third of the index for the random keys of a batch to change; on SQLite half the
writer's CPU.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter

from sqlalchemy import Connection, Engine, MetaData, Table, select

from ctplhub.services.ports import AccessEntry, AccessRow
from ctplhub.store.access_log_partitions import Months, month_of, next_month
from ctplhub.store.pg_bulk import driver_cursor
from ctplhub.store.schema import ACCESS_LOG_SCHEMA
from ctplhub.store.tables import ACCESS_LOG_KEY_PREFIX, access_log, vehicle_key_prefix

_NAMES = AccessRow._fields  # the columns, in the order of a row
_VEHICLE_KEY = itemgetter(_NAMES.index("vehicle_key"))
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


# PostgreSQL's binary COPY format: the signature, flags and header extension; each row its
# column count, then per column a length (-1: NULL) and the value's binary form; the end.
_INT = struct.Struct("!i").pack
_BIGINT = struct.Struct("!q").pack
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + _INT(0) + _INT(0)
_TRAILER = struct.pack("!h", -1)
_ROW = struct.pack("!h", len(_NAMES))
_NULL = _INT(-1)
_INSTANT = _INT(8)  # a timestamptz: microseconds since 2000-01-01 UTC, eight bytes
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_COPY = f"COPY access_log ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
if _NAMES != (
    "at",
    "actor",
    "actor_role",
    "purpose",
    "vehicle_key",
    "request_id",
    "reference",
    "reason",
):
    raise AssertionError("copy_payload encodes the access log's columns in this order")


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode("utf-8")
    return _INT(len(data)) + data


def copy_payload(rows: Sequence[AccessRow]) -> bytes:
    """The binary COPY stream of ``rows``. Each distinct value of a column that entries
    share (the instant and request of one call, the actor, role and purpose of many) is
    encoded once; per row, only the vehicle and a few byte joins."""
    instants: dict[datetime, bytes] = {}
    readers: dict[tuple[str, str, str], bytes] = {}
    requests: dict[str | None, bytes] = {None: _NULL}
    reasons: dict[tuple[str | None, str | None], bytes] = {}
    parts = [_SIGNATURE]
    append = parts.append
    for at, actor, role, purpose, key, request_id, reference, reason in rows:
        when = instants.get(at)
        if when is None:
            when = instants[at] = _INSTANT + _BIGINT((at - _PG_EPOCH) // _MICROSECOND)
        who = readers.get((actor, role, purpose))
        if who is None:
            who = readers[(actor, role, purpose)] = _text(actor) + _text(role) + _text(purpose)
        request = requests.get(request_id)
        if request is None:
            request = requests[request_id] = _text(request_id)
        why = reasons.get((reference, reason))
        if why is None:
            why = reasons[(reference, reason)] = _text(reference) + _text(reason)
        append(_ROW)
        append(when)
        append(who)
        append(_INT(len(key)))
        append(key)
        append(request)
        append(why)
    append(_TRAILER)
    return b"".join(parts)


class SqlAccessLogStore:
    """Implements ``services.ports.AccessLogStore`` on both engines."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._table = access_log_table(engine)
        self._months = None if engine.dialect.name == "sqlite" else Months(engine)

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
        # In the vehicle index's order (stable: one vehicle's entries keep theirs), so the
        # index's B-tree is walked once from left to right, each page changed while it is
        # at hand: on SQLite a third less CPU for 10,000 entries (docs/PERFORMANCE.md §18).
        rows = sorted(rows, key=_VEHICLE_KEY)
        if self._months is None:
            with self._engine.begin() as conn:
                self._append_sqlite(conn, rows)
            return
        self._months.ensure_for(rows)  # a month made stays made, even if the COPY fails
        payload = copy_payload(rows)
        try:
            with (
                self._engine.begin() as conn,
                driver_cursor(conn).copy(_COPY) as copy,
            ):
                copy.write(payload)
        except Exception:
            self._months.forget()  # e.g. a month detached since: looked up again next time
            raise

    @staticmethod
    def _append_sqlite(conn: Connection, rows: Sequence[AccessRow]) -> None:
        instants: dict[datetime, str] = {}  # the entries of one call share their instant
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            params: list[object] = []
            for at, *rest in chunk:
                text = instants.get(at)
                if text is None:
                    text = instants[at] = _sqlite_instant(at)
                params.append(text)
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
        # Found by the key's prefix (migration 0022); the whole key above tells apart
        # vehicles whose keys begin alike.
        prefix = vehicle_key[:ACCESS_LOG_KEY_PREFIX]
        statement = statement.where(vehicle_key_prefix(self._table) == prefix)
        with self._engine.connect() as conn:
            return [AccessEntry(row[0], row[1], row[2]) for row in conn.execute(statement)]
