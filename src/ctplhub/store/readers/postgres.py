"""The coverage read path on PostgreSQL: psycopg's async pool, straight from the event
loop (no worker thread, no per-call SQLAlchemy execution).

It measured twice the throughput of a threaded read at a third of its p99
(docs/PERFORMANCE.md). Small reads go through the ``ReadBatcher``, so concurrent
questions share round trips; bulk reads (police verify) go out in chunks of at most
1,000 plates, a few at once, so PostgreSQL keeps to index lookups and the server decodes
one chunk while the next is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ctplhub.domain.vehicle import VehicleHistory, VehicleSnapshot
from ctplhub.services.ports import InsurerRecord, ReadPart
from ctplhub.store.readers.batcher import BatchedReads
from ctplhub.store.readers.pool_reads import fetch_all
from ctplhub.store.readers.sessions import session_settings
from ctplhub.store.statements import (
    LEDGER_SIZE,
    insurer_record,
    read_statements,
    vehicle_histories,
)

# Settings of the readers' sessions. Times come back in UTC. Every statement here is a
# few index lookups by key, planned once per connection (a generic plan): PostgreSQL would
# otherwise re-plan each run, a millisecond for a lookup of a tenth of that. Sequential
# scans are off for these sessions only, so that a plan made while a table was small or
# not yet analysed (a server started before a bulk load) still uses the indexes; and
# connections are renewed every ten minutes, so plans follow the statistics.
_SESSION = session_settings(
    TimeZone="UTC", plan_cache_mode="force_generic_plan", enable_seqscan="off"
)
_MAX_LIFETIME_S = 600.0


def text_array(values: Sequence[str]) -> str:
    """``values`` as PostgreSQL's text form of an array (``{"a","b"}``), which the
    statement casts to ``VARCHAR[]``: one C-speed join where psycopg's list dumper
    would adapt each element in Python (a bulk read passes 1,000 plates a chunk)."""
    if not values:
        return "{}"
    everything = "".join(values)
    # A quote or a backslash is escaped inside the element's quotes, as PostgreSQL reads it.
    if '"' in everything or "\\" in everything:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def _as_is(value: Any) -> datetime:
    instant: datetime = value  # psycopg gives aware datetimes for timestamptz
    return instant


class PostgresVehicleReader:
    def __init__(
        self,
        url: str,
        *,
        size: int = 8,
        in_flight: int = 4,
        batch: int = 16,
        chunk: int = 1_000,
        wait_s: float = 30.0,
    ) -> None:
        self._conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._size = size
        self._wait_s = wait_s
        in_flight = min(in_flight, size)
        # One pool per event loop: a server has one; tests start an app (a loop) per client.
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool] = {}
        self._reads = BatchedReads(
            self._snapshot,
            batch=batch,
            in_flight=in_flight,
            chunk=chunk,
            bulk_at_once=in_flight,
            bulk_read=self._bulk_snapshot,
        )

    async def _pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = AsyncConnectionPool(
                self._conninfo,
                min_size=self._size,
                max_size=self._size,
                max_lifetime=_MAX_LIFETIME_S,
                timeout=self._wait_s,
                open=False,
                configure=_SESSION,
                kwargs={"autocommit": True, "prepare_threshold": 0},
            )
            await pool.open()
            self._pools[loop] = pool
        return pool

    async def open(self) -> None:
        await self._pool()

    async def close(self) -> None:
        self._reads.forget()
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        return await self._reads.vehicles(plates, vins)

    def vehicle_parts(self, plates: Sequence[str], vins: Sequence[str]) -> AsyncIterator[ReadPart]:
        return self._reads.parts(plates, vins)

    async def _snapshot(self, plates: list[str], vins: list[str]) -> VehicleSnapshot:
        return VehicleSnapshot(
            await self._histories(plates, vins, read_statements("postgresql").vehicles)
        )

    async def _bulk_snapshot(self, plates: list[str], vins: list[str]) -> VehicleSnapshot:
        sql = read_statements("postgresql").vehicles_bulk
        return VehicleSnapshot(await self._histories(plates, vins, sql))

    async def _histories(
        self, plates: list[str], vins: list[str], sql: str
    ) -> list[VehicleHistory]:
        pool = await self._pool()
        # Binary results: timestamps and bytes decoded in C, a tenth less per read.
        params = {"plates": text_array(plates), "vins": text_array(vins)}
        rows = await fetch_all(pool, sql, params, binary=True)
        return vehicle_histories(rows)  # psycopg gives aware datetimes for timestamptz

    async def insurers(self) -> list[InsurerRecord]:
        pool = await self._pool()
        sql = read_statements("postgresql").insurers
        rows = await fetch_all(pool, sql, {}, binary=False)
        return [insurer_record(row, _as_is) for row in rows]

    async def ledger_size(self) -> int:
        """How many ledger leaves this database holds (``readers.routed``)."""
        pool = await self._pool()
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(LEDGER_SIZE)
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0
