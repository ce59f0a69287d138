"""The coverage read path on SQLite: the standard library's driver, on the event loop.

A coverage question is a few index lookups in a file the process has open: tens of
microseconds, less than handing the read to a worker thread and back costs. So small
reads run right on the event loop, on the loop's own connection (docs/PERFORMANCE.md
has the measurement). Bulk reads (police verify of thousands of plates) would hold the
loop for too long; they run in a worker thread, each thread with its own connection (the
driver releases the GIL while SQLite works). WAL mode lets readers run beside the writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import anyio.to_thread

from ctplhub.domain.vehicle import VehicleSnapshot
from ctplhub.services.ports import InsurerRecord
from ctplhub.store.statements import (
    InsurerRow,
    VehicleRow,
    insurer_record,
    read_statements,
    vehicle_histories,
)

_ON_LOOP_MAX = 64  # plates and VINs a read may have and still run on the event loop


@lru_cache(maxsize=65_536)
def _instant(value: Any) -> datetime:
    """SQLAlchemy keeps instants on SQLite as naive UTC text (``2026-03-01 16:00:00.000000``);
    policy starts and ends recur, hence the cache."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _vehicle_row(_: sqlite3.Cursor, row: tuple[Any, ...]) -> VehicleRow:
    return VehicleRow(*row)


class SqliteVehicleReader:
    def __init__(self, path: str, *, on_loop_max: int = _ON_LOOP_MAX) -> None:
        self._path = path
        self._on_loop_max = on_loop_max
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA busy_timeout = 5000")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    async def open(self) -> None:
        self._connection()

    async def close(self) -> None:
        """Close every thread's connection (the app is stopping: no read is under way)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        if len(plates) + len(vins) <= self._on_loop_max:
            return self._read(plates, vins)
        return await anyio.to_thread.run_sync(self._read, plates, vins)

    def _read(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        cursor = self._connection().cursor()
        cursor.row_factory = _vehicle_row
        params = {"plates": json.dumps(list(plates)), "vins": json.dumps(list(vins))}
        rows = cursor.execute(read_statements("sqlite").vehicles, params).fetchall()
        return VehicleSnapshot(vehicle_histories(rows, _instant))

    async def insurers(self) -> list[InsurerRecord]:
        rows = self._connection().execute(read_statements("sqlite").insurers).fetchall()
        return [insurer_record(InsurerRow(*row), _instant) for row in rows]
