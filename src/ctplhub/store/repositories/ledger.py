"""The ledger tables inside a unit of work (DESIGN §6): the append lock, the compact-range
read, the bulk write of the leaves, and what an idempotent repeat reads back.

The append lock is what keeps one log across processes. On PostgreSQL it is a
transaction-scoped advisory lock (``pg_advisory_xact_lock``), released by the commit or
the rollback; on SQLite, the database's one write lock, which the transaction takes with
a write that changes nothing (it holds it already after the events' INSERT; the statement
makes the rule independent of what came before). Either way the tree size is read only
afterwards, so no two transactions ever read the same size.

Each leaf is one row that also carries the stored hashes appending it wrote (its leaf
hash, then the subtrees it completes; ``ledger/storage.py``), so a chunk of events writes
one ledger row per event, not three (docs/DECISIONS.md, "Ledger: one row per leaf"). The
rows go in with binary ``COPY`` on PostgreSQL (``pg_bulk``) and with the driver's
``executemany`` on SQLite: a chunk's thousands of rows skip SQLAlchemy's per-row
parameter processing. A stored hash is read back from its leaf's row
(``ledger.stored_hash_home``): the compact range before a batch, at most ``1 + log2(n)``
hashes, is one primary-key query for as many rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, text

from ctplhub.ledger import TreeHead, hashes_from_rows, leaves_holding
from ctplhub.services.ledger_ports import LeafRow
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.store.pg_bulk import CopyColumns, copy_in, driver_cursor
from ctplhub.store.tables import ledger_leaves

APPEND_LOCK = 0x6374706C6C656467  # "ctplledg": the one advisory lock key of the ledger
_LEAVES = CopyColumns.of(ledger_leaves, LeafRow._fields)
_SIZE = text("SELECT tree_size FROM ledger_tree_heads ORDER BY tree_size DESC LIMIT 1")
_HEAD_COLUMNS = "tree_size, root_hash, timestamp_ms, kid, signature"
_COVERING = text(
    f"SELECT {_HEAD_COLUMNS} FROM ledger_tree_heads WHERE tree_size > :leaf "
    "ORDER BY tree_size LIMIT 1"
)
_INSERT_HEAD = text(
    f"INSERT INTO ledger_tree_heads ({_HEAD_COLUMNS}) "
    "VALUES (:tree_size, :root_hash, :timestamp_ms, :kid, :signature)"
)
_LEAF_OF = text(
    "SELECT leaf_index, event_id, entry, salts_enc, hashes FROM ledger_leaves "
    "WHERE event_id = :event"
)
_HASHES_IN = text(
    "SELECT leaf_index, hashes FROM ledger_leaves WHERE leaf_index IN :leaves"
).bindparams(bindparam("leaves", expanding=True))
_HASHES_ANY = text("SELECT leaf_index, hashes FROM ledger_leaves WHERE leaf_index = ANY(:leaves)")
_INSERT_LEAVES = (
    f"INSERT INTO ledger_leaves ({', '.join(LeafRow._fields)}) "
    f"VALUES ({', '.join('?' for _ in LeafRow._fields)})"
)


def head_of_row(row: Sequence[object]) -> SignedTreeHead:
    size, root, stamp, kid, signature = row
    assert isinstance(size, int) and isinstance(stamp, int) and isinstance(kid, str)
    assert isinstance(root, bytes | memoryview) and isinstance(signature, bytes | memoryview)
    return SignedTreeHead(TreeHead(size, bytes(root), stamp), kid, bytes(signature))


class SqlLedgerRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    def lock_for_append(self) -> int:
        if self._postgres:
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
        else:
            self._conn.execute(text("UPDATE ledger_tree_heads SET tree_size = tree_size WHERE 0"))
        size = self._conn.execute(_SIZE).scalar()
        return int(size or 0)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        query = _HASHES_ANY if self._postgres else _HASHES_IN
        rows = self._conn.execute(query, {"leaves": leaves_holding(indexes)})
        # A missing row leaves the answer short, which the ledger refuses by name.
        return hashes_from_rows(indexes, {int(leaf): bytes(value) for leaf, value in rows})

    def append(self, leaves: Sequence[LeafRow], head: SignedTreeHead) -> None:
        if self._postgres:
            with driver_cursor(self._conn) as cursor:
                copy_in(cursor, "ledger_leaves", _LEAVES, leaves)
        else:
            driver = self._conn.connection.driver_connection
            assert driver is not None
            driver.executemany(_INSERT_LEAVES, leaves)
        self._conn.execute(
            _INSERT_HEAD,
            {
                "tree_size": head.head.tree_size,
                "root_hash": head.head.root_hash,
                "timestamp_ms": head.head.timestamp,
                "kid": head.kid,
                "signature": head.signature,
            },
        )

    def leaf_of_event(self, event_id: int) -> LeafRow | None:
        row = self._conn.execute(_LEAF_OF, {"event": event_id}).first()
        if row is None:
            return None
        return LeafRow(row[0], row[1], bytes(row[2]), bytes(row[3]), bytes(row[4]))

    def head_covering(self, leaf_index: int) -> SignedTreeHead | None:
        row = self._conn.execute(_COVERING, {"leaf": leaf_index}).first()
        return None if row is None else head_of_row(tuple(row))
