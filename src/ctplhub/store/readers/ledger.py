"""The ledger's read path (``services.ledger_proofs.LedgerReader``), one implementation
per engine, beside the coverage readers and built the same way: psycopg's async pool
straight from the event loop on PostgreSQL, the standard library's ``sqlite3`` on worker
threads on SQLite (docs/DECISIONS.md, "Ledger endpoints and the standalone verifier").

A proof is one statement: the rows of the leaves that hold the stored hashes it needs
(``ledger.leaves_holding``; ``WHERE leaf_index = ANY(:ids)``, or ``json_each`` on SQLite,
as ``store/statements.py`` passes lists), guarded by the latest signed tree size in the
same statement, so a proof for a tree nobody signed reads no hash and costs no second
round trip when it is valid; the hashes are cut from the rows' ``hashes`` in Python
(``ledger.hashes_from_rows``). At 10,000,000 leaves that is at most about 48
primary-key lookups.

``sync_hash_reader`` is the same read as a ``ledger.HashReader`` on an SQLAlchemy
connection, for callers that already hold one (commands, tests).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import anyio.to_thread
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import (
    BigInteger,
    any_,
    bindparam,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, make_url

from ctplhub.ledger import (
    HASH_SIZE,
    HashReader,
    StoredHashesMissing,
    hashes_from_rows,
    leaves_holding,
)
from ctplhub.ledger.storage import read_checked
from ctplhub.services.ledger_proofs import LedgerEntry, SignedTreeHead
from ctplhub.store.readers.pool_reads import fetch_all
from ctplhub.store.readers.sessions import session_settings
from ctplhub.store.repositories.ledger import head_of_row
from ctplhub.store.statements import PG_DIALECT, SQLITE_DIALECT
from ctplhub.store.tables import ledger_leaves, ledger_tree_heads

GUARD_PASSED = -1  # the ``leaf_index`` of the hashes statement's sentinel row


@dataclass(frozen=True, slots=True)
class LedgerStatements:
    """SQL text of the ledger reads, for one engine's driver."""

    hashes: str  # ids (leaves), size -> (leaf_index, hashes) + a sentinel row; none unless
    # size is signed
    latest_head: str  # -> (tree_size, root_hash, timestamp_ms, kid, signature) or none
    head_by_size: str  # size -> the same
    entries: str  # start, end -> (leaf_index, entry, hashes)


def _signed_size() -> Any:
    return select(
        func.coalesce(func.max(ledger_tree_heads.c.tree_size), literal_column("0"))
    ).scalar_subquery()


def _member(column: Any, name: str, engine: str) -> Any:
    if engine == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(BigInteger)))
    return column.in_(select(literal_column("value")).select_from(func.json_each(bindparam(name))))


def _text(statement: Any, engine: str) -> str:
    dialect = PG_DIALECT if engine == "postgresql" else SQLITE_DIALECT
    return str(statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))


@cache
def ledger_statements(engine: str) -> LedgerStatements:
    t, lv = ledger_tree_heads.c, ledger_leaves.c
    size = bindparam("size", type_=BigInteger)
    signed = size <= _signed_size()
    # The sentinel row says the guard passed, so a refusal and a broken store differ.
    hashes = union_all(
        select(lv.leaf_index, lv.hashes).where(_member(lv.leaf_index, "ids", engine), signed),
        select(literal_column(str(GUARD_PASSED)), null()).where(signed),
    )
    head_columns = (t.tree_size, t.root_hash, t.timestamp_ms, t.kid, t.signature)
    latest = select(*head_columns).where(
        t.tree_size == select(func.max(t.tree_size)).scalar_subquery()
    )
    by_size = select(*head_columns).where(t.tree_size == bindparam("size", type_=BigInteger))
    entries = (
        select(lv.leaf_index, lv.entry, lv.hashes)
        .where(
            lv.leaf_index >= bindparam("start", type_=BigInteger),
            lv.leaf_index < bindparam("end", type_=BigInteger),
            lv.leaf_index < _signed_size(),
        )
        .order_by(lv.leaf_index)
    )
    return LedgerStatements(
        hashes=_text(hashes, engine),
        latest_head=_text(latest, engine),
        head_by_size=_text(by_size, engine),
        entries=_text(entries, engine),
    )


def ordered(indexes: Sequence[int], rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """The hashes ``indexes`` name, in their order, cut from ``rows`` (``leaf_index``,
    ``hashes``); refuses a read that misses one (a broken store, never a shorter proof),
    by the ledger's own check of a read."""
    found = {int(leaf): bytes(value) for leaf, value in rows}
    return list(read_checked(lambda wanted: hashes_from_rows(wanted, found), indexes))


def leaf_entries(rows: Sequence[Sequence[Any]]) -> list[LedgerEntry]:
    """Each leaf row of the entries statement with its stored leaf hash (the first
    ``HASH_SIZE`` bytes of its ``hashes``)."""
    out: list[LedgerEntry] = []
    for leaf_index, entry, hashes in rows:
        if len(hashes) < HASH_SIZE:
            raise StoredHashesMissing(f"leaf {leaf_index} has no stored leaf hash")
        out.append(LedgerEntry(int(leaf_index), bytes(entry), bytes(hashes[:HASH_SIZE])))
    return out


def _leaf_list(indexes: Sequence[int], engine: str) -> Any:
    """The leaves holding ``indexes``, as the statements take a list on each engine."""
    leaves = leaves_holding(indexes)
    return leaves if engine == "postgresql" else json.dumps(leaves)


def sync_hash_reader(conn: Connection) -> HashReader:
    """A ``HashReader`` over an SQLAlchemy connection (no signed-size guard)."""
    engine = conn.dialect.name
    lv = ledger_leaves.c
    statement = select(lv.leaf_index, lv.hashes).where(_member(lv.leaf_index, "ids", engine))

    def read(indexes: Sequence[int]) -> list[bytes]:
        rows = conn.execute(statement, {"ids": _leaf_list(indexes, engine)}).all()
        return ordered(indexes, [tuple(row) for row in rows])

    return read


class PostgresLedgerReader:
    """Reads on psycopg's async pool; one pool per event loop, as the coverage reader."""

    def __init__(self, url: str, *, size: int = 4) -> None:
        self._conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._size = size
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool] = {}
        self._sql = ledger_statements("postgresql")

    async def _pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = AsyncConnectionPool(
                self._conninfo,
                min_size=1,
                max_size=self._size,
                max_lifetime=600.0,
                open=False,
                # Primary-key lookups planned once per connection (store/readers/postgres.py).
                configure=session_settings(plan_cache_mode="force_generic_plan"),
                kwargs={"autocommit": True},
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

    async def rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement, one round trip: every read of this class goes through here."""
        rows: list[tuple[Any, ...]] = await fetch_all(await self._pool(), sql, params, binary=True)
        return rows

    async def latest_tree_head(self) -> SignedTreeHead | None:
        found = await self.rows(self._sql.latest_head, {})
        return head_of_row(tuple(found[0])) if found else None

    async def tree_head(self, tree_size: int) -> SignedTreeHead | None:
        found = await self.rows(self._sql.head_by_size, {"size": tree_size})
        return head_of_row(tuple(found[0])) if found else None

    async def hashes(self, indexes: Sequence[int], *, tree_size: int) -> list[bytes] | None:
        params = {"ids": _leaf_list(indexes, "postgresql"), "size": tree_size}
        return _checked(indexes, await self.rows(self._sql.hashes, params))

    async def entries(self, start: int, end: int) -> list[LedgerEntry]:
        params = {"start": start, "end": end}
        return leaf_entries(await self.rows(self._sql.entries, params))


class SqliteLedgerReader:
    """Reads with ``sqlite3`` on worker threads, one read-only connection per thread."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._sql = ledger_statements("sqlite")

    def _connection(self) -> sqlite3.Connection:
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
        return None

    async def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    def rows_now(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement on the calling thread's connection (one read transaction)."""
        return self._connection().execute(sql, params).fetchall()

    async def rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement on a worker thread: every read of this class goes through here."""
        return await anyio.to_thread.run_sync(self.rows_now, sql, params)

    async def latest_tree_head(self) -> SignedTreeHead | None:
        found = await self.rows(self._sql.latest_head, {})
        return head_of_row(tuple(found[0])) if found else None

    async def tree_head(self, tree_size: int) -> SignedTreeHead | None:
        found = await self.rows(self._sql.head_by_size, {"size": tree_size})
        return head_of_row(tuple(found[0])) if found else None

    async def hashes(self, indexes: Sequence[int], *, tree_size: int) -> list[bytes] | None:
        params = {"ids": _leaf_list(indexes, "sqlite"), "size": tree_size}
        return _checked(indexes, await self.rows(self._sql.hashes, params))

    async def entries(self, start: int, end: int) -> list[LedgerEntry]:
        params = {"start": start, "end": end}
        return leaf_entries(await self.rows(self._sql.entries, params))


def _checked(indexes: Sequence[int], rows: Sequence[Sequence[Any]]) -> list[bytes] | None:
    """``None`` when the size guard refused (no sentinel row), else the hashes."""
    if not any(row[0] == GUARD_PASSED for row in rows):
        return None
    return ordered(indexes, [row for row in rows if row[0] != GUARD_PASSED])


def ledger_reader(url: str) -> PostgresLedgerReader | SqliteLedgerReader:
    """The ledger reader for a database URL (as ``store.readers.vehicle_reader``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLedgerReader(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return SqliteLedgerReader(parsed.database)
    raise ValueError(f"no ledger reader for {parsed.get_backend_name()} databases")


SqlLedgerReader = PostgresLedgerReader | SqliteLedgerReader
"""Either reader; ``bootstrap`` hands it to ``LedgerProofs`` as its ``LedgerReader``."""
