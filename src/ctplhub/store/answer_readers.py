"""``AnswerReader`` implementations: what a coverage answer reads, awaited.

On PostgreSQL the one statement of an answer goes straight from the event loop to a
psycopg async pool: no worker thread, no per-call SQLAlchemy execution. It measured twice
the throughput of the threaded path at a third of its p99 (docs/PERFORMANCE.md). The SQL is
the same ``_vehicle_snapshot`` statement the synchronous repository runs, compiled once.
On SQLite the synchronous repositories run in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import anyio.to_thread
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, any_, bindparam, select
from sqlalchemy.dialects import postgresql

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.vehicle import PlateClaim
from ctplhub.services.ports import InsurerRecord, UnitOfWorkFactory
from ctplhub.store.repositories import (
    _ALL_INSURERS,
    insurer_record,
    snapshot_rows,
    vehicle_snapshot_statement,
)
from ctplhub.store.tables import policy_events


def _pg_member(column: Any) -> Any:
    return column == any_(bindparam("values", type_=postgresql.ARRAY(column.type)))


def _compiled(statement: Any) -> tuple[str, dict[str, Any]]:
    compiled = statement.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[no-untyped-call]
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    return compiled.string, constants


class PostgresAnswerReader:
    def __init__(self, url: str, *, size: int = 8) -> None:
        self._conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._size = size
        # One pool per event loop: a server has one; tests start an app (a loop) per client.
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool] = {}
        self._snapshot, self._snapshot_constants = _compiled(vehicle_snapshot_statement(_pg_member))
        e = policy_events.c
        self._owner, self._owner_constants = _compiled(
            select(e.owner_id_bidx)
            .where(e.vin == bindparam("vin"))
            .order_by(e.occurred_at.desc(), e.id.desc())
            .limit(1)
        )
        self._insurers, _ = _compiled(_ALL_INSURERS)

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
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def _rows(self, sql: str, params: dict[str, Any], **cursor: Any) -> list[Any]:
        pool = await self._pool()
        async with pool.connection() as conn, conn.cursor(**cursor) as cur:
            await cur.execute(sql, params)
            rows: list[Any] = await cur.fetchall()
            return rows

    async def vehicle_snapshot(
        self, plate: str, at: datetime
    ) -> tuple[list[PlateClaim], dict[str, list[PolicyState]]]:
        params = {**self._snapshot_constants, "values": [plate], "at": at}
        return snapshot_rows(await self._rows(self._snapshot, params))

    async def owner_index_of(self, vin: str) -> bytes | None:
        rows = await self._rows(self._owner, {**self._owner_constants, "vin": vin})
        return bytes(rows[0][0]) if rows else None

    async def insurers(self) -> list[InsurerRecord]:
        rows = await self._rows(self._insurers, {}, row_factory=namedtuple_row)
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
