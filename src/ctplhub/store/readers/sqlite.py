"""The coverage read path on SQLite: the standard library's driver on worker threads,
with concurrent questions batched into one statement.

The SQLite library releases the GIL while it works, so a read on a worker thread runs
on another core while the event loop goes on answering; handing a read to a thread and
back costs more than the read itself, so the questions asked while a read is in flight
go together in the next one (``ReadBatcher``, as on PostgreSQL). Measured against reads
right on the event loop and against one thread hop per question, this answered the
most (docs/PERFORMANCE.md, ``bench/sqlite_read_modes.py``). Each thread has its own
connection; WAL mode lets readers run beside the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import anyio.to_thread
import orjson

from ctplhub.domain.vehicle import VehicleSnapshot
from ctplhub.services.ports import InsurerRecord, ReadPart
from ctplhub.store.readers.batcher import BatchedReads
from ctplhub.store.statements import (
    LEDGER_SIZE,
    insurer_record,
    read_statements,
    sqlite_vehicle_rows,
    vehicle_histories,
)

_BATCH = 16  # plates and VINs a batched read may hold
_IN_FLIGHT = 2  # batched reads at once
_CHUNK = 1_000  # plates or VINs a statement of a bulk read holds
_BULK_THREADS = 2
# Pages through a memory map and a larger cache: a question reads ~15 pages scattered
# over the indexes, and a read() system call for each cost a fifth of the lookup. The
# map grows only as pages are read.
_MMAP_BYTES = 16 << 30
_CACHE_KIB = 64 << 10


@lru_cache(maxsize=65_536)
def _instant(value: Any) -> datetime:
    """SQLAlchemy keeps instants on SQLite as naive UTC text (``2026-03-01 16:00:00.000000``);
    policy starts and ends recur, hence the cache."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# The instants of a JSON read, marked UTC (``+00:00``): read in C into aware datetimes
# whose tzinfo is ``UTC`` itself; cached, since policy starts and ends recur.
_json_instant = lru_cache(maxsize=65_536)(datetime.fromisoformat)


def _json_array(values: Sequence[str]) -> str:
    """The keys as the JSON array the statement reads (``json_each``)."""
    return orjson.dumps(list(values)).decode()


def _snapshot(rows_json: str) -> VehicleSnapshot:
    rows = sqlite_vehicle_rows(orjson.loads(rows_json), _json_instant)
    return VehicleSnapshot(vehicle_histories(rows))


class SqliteVehicleReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # The owners' batched reads have threads of their own (a chunk of a police bulk
        # read never holds one up), reached through the loop's executor call: anyio's
        # hand-over cost the server ~25 µs of CPU a question more under load (§20).
        self._threads: ThreadPoolExecutor | None = None
        # A bulk read (police verify) goes out in chunks on two threads at once, so that
        # SQLite works on both cores while the loop waits.
        self._reads = BatchedReads(
            self._on_thread,
            batch=_BATCH,
            in_flight=_IN_FLIGHT,
            chunk=_CHUNK,
            bulk_at_once=_BULK_THREADS,
            bulk_read=self._bulk_on_thread,
        )

    def _connection(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
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
        if self._threads is not None:
            self._threads.shutdown()
            self._threads = None
        self._local = threading.local()
        self._reads.forget()

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        return await self._reads.vehicles(plates, vins)

    def vehicle_parts(self, plates: Sequence[str], vins: Sequence[str]) -> AsyncIterator[ReadPart]:
        return self._reads.parts(plates, vins)

    async def _on_thread(self, plates: list[str], vins: list[str]) -> VehicleSnapshot:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="sqlite-read")
        loop = asyncio.get_running_loop()
        return _snapshot(await loop.run_in_executor(self._threads, self.read_json, plates, vins))

    async def _bulk_on_thread(self, plates: list[str], vins: list[str]) -> VehicleSnapshot:
        """A bulk read's chunk: without the owners' index, a fifth less JSON."""
        return _snapshot(await anyio.to_thread.run_sync(self.read_json, plates, vins, False))

    def read(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        """One statement on the calling thread's connection."""
        return _snapshot(self.read_json(plates, vins))

    def read_json(self, plates: Sequence[str], vins: Sequence[str], owners: bool = True) -> str:
        """The rows of one read as one JSON text, made by SQLite on the calling thread.

        The driver lets the GIL go while SQLite steps and takes it back to build each
        row; on a reading thread beside a busy event loop every row then waited for the
        GIL, up to the switch interval (1 ms). One row of JSON is one wait
        (docs/PERFORMANCE.md §16)."""
        params = {"plates": _json_array(plates), "vins": _json_array(vins)}
        statements = read_statements("sqlite")
        statement = statements.vehicles_json if owners else statements.vehicles_json_bulk
        assert statement is not None
        row = self._connection().execute(statement, params).fetchone()
        return str(row[0])

    async def insurers(self) -> list[InsurerRecord]:
        def read() -> list[InsurerRecord]:
            rows = self._connection().execute(read_statements("sqlite").insurers).fetchall()
            return [insurer_record(row, _instant) for row in rows]

        return await anyio.to_thread.run_sync(read)

    async def ledger_size(self) -> int:
        """How many ledger leaves this database holds (``readers.routed``)."""

        def read() -> int:
            row = self._connection().execute(LEDGER_SIZE).fetchone()
            return int(row[0]) if row is not None else 0

        return await anyio.to_thread.run_sync(read)
