"""One read statement on a connection of psycopg's async pool, surviving a database
restart.

A restart (or a failover) closes every pooled connection at once, and the pool finds a
dead one only when it hands it out: without this, each of the pool's connections would
fail one request after the database is back (measured by ``bench/faults/pg_restart.py``:
every owner query of the next seconds answered 503). So the first read that meets a
closed connection has the pool test all its idle ones (``check``: the dead are replaced)
and runs once more, waiting at most a couple of seconds for a connection; reads change
nothing, so running one twice is harmless. While the database is still down the retry
fails too, and the caller answers ``503 storage_unavailable`` (``store/failures.py``).
There is no test on every checkout (a round trip per read) for the same reason the
SQLAlchemy engines have no pre-ping (``store/schema.py``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ctplhub.store.failures import storage_unavailable

_RETRY_WAIT_S = 2.0


async def fetch_all(
    pool: AsyncConnectionPool, sql: Any, params: dict[str, Any], *, binary: bool
) -> list[Any]:
    try:
        return await _fetch(pool, sql, params, binary, None)
    except psycopg.OperationalError as error:
        if not storage_unavailable(error):
            raise
    await pool.check()
    return await _fetch(pool, sql, params, binary, _RETRY_WAIT_S)


async def _fetch(
    pool: AsyncConnectionPool, sql: Any, params: dict[str, Any], binary: bool, wait: float | None
) -> list[Any]:
    async with pool.connection(timeout=wait) as conn, conn.cursor(binary=binary) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()
