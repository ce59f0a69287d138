"""``AnswerReader`` implementations: what a coverage answer reads, awaited.

On PostgreSQL the one statement of an answer goes straight from the event loop to a
psycopg async pool: no worker thread, no per-call SQLAlchemy execution. It measured twice
the throughput of the threaded path at a third of its p99 (docs/PERFORMANCE.md). The SQL is
the same ``_vehicle_snapshot`` statement the synchronous repository runs, compiled once,
on first use.
Under load, concurrent answers share round trips: the plates asked for while a read is
in flight are fetched together by the next one (``SnapshotBatcher``), which cut the
read's cost per answer from ~120 µs to ~20 µs of server CPU at a batch of eight.
On SQLite the synchronous repositories run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import anyio.to_thread
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, bindparam, select

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.vehicle import PlateClaim
from ctplhub.services.ports import InsurerRecord, UnitOfWorkFactory
from ctplhub.store.repositories import (
    _ALL_INSURERS,
    PG_DIALECT,
    insurer_record,
    pg_member,
    snapshot_rows,
    vehicle_snapshot_statement,
)
from ctplhub.store.tables import policy_events

Compiled = tuple[str, dict[str, Any]]  # SQL text and its constant parameters


def _compiled(statement: Any) -> Compiled:
    compiled = statement.compile(dialect=PG_DIALECT)
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    return compiled.string, constants


@dataclass(frozen=True, slots=True)
class _Statements:
    snapshot: Compiled
    owner: Compiled
    insurers: Compiled


Snapshot = tuple[list[PlateClaim], dict[str, list[PolicyState]]]
_Waiting = tuple[str, datetime, "asyncio.Future[Snapshot]"]


class SplitSnapshot:
    """A snapshot read for several plates at one instant, split per question: for a
    plate at an instant no later than the read's, exactly what reading that plate alone
    at that instant would give.

    A vehicle belongs to a plate's snapshot when it claimed the plate up to the instant;
    its claims are those up to the instant. Policy heads do not depend on the instant.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        claims, self._states = snapshot
        self._claims_of_vin: dict[str, list[PlateClaim]] = {}
        self._claims_of_plate: dict[str, list[PlateClaim]] = {}
        for claim in claims:
            self._claims_of_vin.setdefault(claim.vin, []).append(claim)
            self._claims_of_plate.setdefault(claim.plate, []).append(claim)

    def of(self, plate: str, at: datetime) -> Snapshot:
        vins = {c.vin for c in self._claims_of_plate.get(plate, ()) if c.occurred_at <= at}
        claims = [c for vin in vins for c in self._claims_of_vin[vin] if c.occurred_at <= at]
        return claims, {vin: self._states[vin] for vin in vins if vin in self._states}


class SnapshotBatcher:
    """Coalesces concurrent snapshot reads into few round trips.

    A read waits for the next turn of the event loop, then goes out with every plate
    asked for meanwhile, up to ``max_batch``; at most ``max_in_flight`` reads run at
    once, and plates asked for while they run make up the next one. Alone, a question
    costs one turn of the loop; under load, a round trip serves many, which is what a
    round trip costs most: the driver's and the kernel's work per statement. The read
    uses the latest instant asked for; each question keeps only the claims up to its own
    (``SplitSnapshot``), so its answer is the one a read of its own would give.

    Batches are capped (16 plates): with 32 connections, uncapped batches of ~30 made
    every request wait on the same long read and left the server idle 6 % of the time;
    at 16 it stays busy and answers 10 % more (docs/PERFORMANCE.md).
    """

    def __init__(
        self,
        read: Callable[[list[str], datetime], Awaitable[Snapshot]],
        *,
        max_in_flight: int,
        max_batch: int = 16,
    ) -> None:
        self._read = read
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def snapshot(self, plate: str, at: datetime) -> Snapshot:
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._waiting.append((plate, at, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self._scheduled and self._waiting and self._in_flight < self._max_in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._in_flight += 1
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            plates = sorted({plate for plate, _, _ in batch})
            snapshot = SplitSnapshot(await self._read(plates, max(at for _, at, _ in batch)))
            for plate, at, future in batch:
                if not future.done():  # a waiter whose client went away is cancelled
                    future.set_result(snapshot.of(plate, at))
        except Exception as error:  # every waiter left gets the failure, none hangs
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
        except BaseException:  # cancelled (the loop is closing): so are the waiters
            for _, _, future in batch:
                future.cancel()
            raise
        finally:
            self._in_flight -= 1
            self._schedule()


class PostgresAnswerReader:
    def __init__(self, url: str, *, size: int = 8, in_flight: int = 4, batch: int = 16) -> None:
        self._conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._size = size
        # One pool per event loop: a server has one; tests start an app (a loop) per client.
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool] = {}
        self._in_flight = min(in_flight, size)
        self._batch = batch
        self._batchers: dict[asyncio.AbstractEventLoop, SnapshotBatcher] = {}

    @cached_property
    def _sql(self) -> _Statements:
        """Compiled on first use: every process builds a reader (importers and CLI
        commands too), few of them answer questions."""
        e = policy_events.c
        return _Statements(
            snapshot=_compiled(vehicle_snapshot_statement(pg_member)),
            owner=_compiled(
                select(e.owner_id_bidx)
                .where(e.vin == bindparam("vin"))
                .order_by(e.occurred_at.desc(), e.id.desc())
                .limit(1)
            ),
            insurers=_compiled(_ALL_INSURERS),
        )

    async def _pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = AsyncConnectionPool(
                self._conninfo,
                min_size=self._size,
                max_size=self._size,
                open=False,
                kwargs={
                    "autocommit": True,
                    "prepare_threshold": 0,  # every statement here is hot: prepare at once
                    "options": "-c plan_cache_mode=force_generic_plan",
                },
            )
            await pool.open()
            self._pools[loop] = pool
        return pool

    async def open(self) -> None:
        await self._pool()

    async def close(self) -> None:
        self._batchers.pop(asyncio.get_running_loop(), None)
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def _rows(self, sql: str, params: dict[str, Any], **cursor: Any) -> list[Any]:
        pool = await self._pool()
        async with pool.connection() as conn, conn.cursor(**cursor) as cur:
            await cur.execute(sql, params)
            rows: list[Any] = await cur.fetchall()
            return rows

    async def vehicle_snapshot(self, plate: str, at: datetime) -> Snapshot:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = SnapshotBatcher(
                self._snapshot_of, max_in_flight=self._in_flight, max_batch=self._batch
            )
            self._batchers[loop] = batcher
        return await batcher.snapshot(plate, at)

    async def _snapshot_of(self, plates: list[str], at: datetime) -> Snapshot:
        sql, constants = self._sql.snapshot
        return snapshot_rows(await self._rows(sql, {**constants, "values": plates, "at": at}))

    async def owner_index_of(self, vin: str) -> bytes | None:
        sql, constants = self._sql.owner
        rows = await self._rows(sql, {**constants, "vin": vin})
        return bytes(rows[0][0]) if rows else None

    async def insurers(self) -> list[InsurerRecord]:
        rows = await self._rows(self._sql.insurers[0], {}, row_factory=namedtuple_row)
        return [insurer_record(row) for row in rows]


class ThreadedAnswerReader:
    """The synchronous repositories in a worker thread (SQLite, and anything without an
    async driver)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def vehicle_snapshot(
        self, plate: str, at: datetime
    ) -> tuple[list[PlateClaim], dict[str, list[PolicyState]]]:
        def read() -> tuple[list[PlateClaim], dict[str, list[PolicyState]]]:
            with self._uow() as uow:
                return uow.events.vehicle_snapshot(plate, at)

        return await anyio.to_thread.run_sync(read)

    async def owner_index_of(self, vin: str) -> bytes | None:
        def read() -> bytes | None:
            with self._uow() as uow:
                return uow.events.owner_index_of(vin)

        return await anyio.to_thread.run_sync(read)

    async def insurers(self) -> list[InsurerRecord]:
        def read() -> list[InsurerRecord]:
            with self._uow() as uow:
                return uow.insurers.all()

        return await anyio.to_thread.run_sync(read)


def answer_reader(engine: Engine, uow: UnitOfWorkFactory) -> Any:
    """The best reader for the engine's database."""
    if engine.dialect.name == "postgresql":
        return PostgresAnswerReader(engine.url.render_as_string(hide_password=False))
    return ThreadedAnswerReader(uow)
