"""The ledger's stored hashes move into the rows of the leaves that wrote them (DESIGN §6).

Each accepted event wrote a ``ledger_leaves`` row and, on average, two ``ledger_hashes``
rows: on PostgreSQL, three rows per event were a large part of the ledger's share of
batch ingest (docs/DECISIONS.md, "Ledger: one row per leaf"). Now ``ledger_leaves.hashes``
holds, concatenated in index order, the 32-byte hashes appending that leaf wrote: its
leaf hash, then the hash of every subtree it completes. Leaf ``m``'s hashes are the
stored indexes from ``2m - popcount(m)`` up to (not including) ``2(m+1) - popcount(m+1)``
(``ledger/storage.py``), so the copy is a range per leaf:

- PostgreSQL: one ``UPDATE`` with a correlated ``string_agg`` over the primary key's
  range (popcount as the count of ones of ``leaf_index::bit(64)``, which every supported
  version has);
- SQLite: windows of leaf indexes, their hashes read in one range and written back with
  ``executemany``.

The column is added ``NOT NULL`` with an empty default, so it is never null on the way;
PostgreSQL then drops the default (SQLite cannot without rebuilding the table, and the
application always writes the column). A leaf with no stored hash (a store tampered
with) gets an empty value, which ``ctplhub ledger audit`` names; a stored hash whose leaf
has no row has nowhere to go and goes with ``ledger_hashes`` (the audit already named
that leaf removed). The downgrade cuts the values back into ``ledger_hashes`` rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:00:00
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HASH = 32
_WINDOW = 10_000  # leaves per SQLite round

_POPCOUNT = "length(replace(({n})::bit(64)::text, '0', ''))"
_PG_FILL = f"""
UPDATE ledger_leaves AS l SET hashes = coalesce((
    SELECT string_agg(h.hash, ''::bytea ORDER BY h.idx) FROM ledger_hashes AS h
    WHERE h.idx >= 2 * l.leaf_index - {_POPCOUNT.format(n="l.leaf_index")}
      AND h.idx < 2 * (l.leaf_index + 1) - {_POPCOUNT.format(n="l.leaf_index + 1")}
), '\\x'::bytea)
"""
_PG_SPLIT = f"""
INSERT INTO ledger_hashes (idx, hash)
SELECT 2 * l.leaf_index - {_POPCOUNT.format(n="l.leaf_index")} + level,
       substring(l.hashes FROM level * {_HASH} + 1 FOR {_HASH})
FROM ledger_leaves AS l, generate_series(0, length(l.hashes) / {_HASH} - 1) AS level
"""


def _first_index(leaf: int) -> int:
    """``ledger.stored_hash_index(0, leaf)``, as it was at this revision."""
    return 2 * leaf - leaf.bit_count()


def _leaf_windows(conn: sa.Connection) -> Iterator[list[int]]:
    """The leaf indexes, ascending, ``_WINDOW`` at a time (by key: memory stays flat)."""
    after = -1
    query = sa.text(
        "SELECT leaf_index FROM ledger_leaves WHERE leaf_index > :after "
        "ORDER BY leaf_index LIMIT :limit"
    )
    while window := [int(n) for (n,) in conn.execute(query, {"after": after, "limit": _WINDOW})]:
        yield window
        after = window[-1]


def _sqlite_fill(conn: sa.Connection) -> None:
    for window in _leaf_windows(conn):
        lo, hi = _first_index(window[0]), _first_index(window[-1] + 1)
        found = {
            int(idx): bytes(value)
            for idx, value in conn.execute(
                sa.text("SELECT idx, hash FROM ledger_hashes WHERE idx >= :lo AND idx < :hi"),
                {"lo": lo, "hi": hi},
            )
        }
        rows = [
            {
                "leaf": leaf,
                "hashes": b"".join(
                    found[idx]
                    for idx in range(_first_index(leaf), _first_index(leaf + 1))
                    if idx in found
                ),
            }
            for leaf in window
        ]
        conn.execute(
            sa.text("UPDATE ledger_leaves SET hashes = :hashes WHERE leaf_index = :leaf"), rows
        )


def _sqlite_split(conn: sa.Connection) -> None:
    for window in _leaf_windows(conn):
        rows = conn.execute(
            sa.text(
                "SELECT leaf_index, hashes FROM ledger_leaves "
                "WHERE leaf_index >= :lo AND leaf_index <= :hi"
            ),
            {"lo": window[0], "hi": window[-1]},
        )
        stored = [
            {"idx": _first_index(int(leaf)) + level, "hash": bytes(value[level * _HASH :][:_HASH])}
            for leaf, value in rows
            for level in range(len(value) // _HASH)
        ]
        if stored:
            conn.execute(
                sa.text("INSERT INTO ledger_hashes (idx, hash) VALUES (:idx, :hash)"), stored
            )


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    empty = sa.text("'\\x'::bytea") if postgres else sa.text("X''")
    op.add_column(
        "ledger_leaves",
        sa.Column("hashes", sa.LargeBinary(), nullable=False, server_default=empty),
    )
    if postgres:
        op.execute(_PG_FILL)
        op.alter_column("ledger_leaves", "hashes", server_default=None)
    else:
        _sqlite_fill(conn)
    op.drop_table("ledger_hashes")


def downgrade() -> None:
    op.create_table(
        "ledger_hashes",
        sa.Column("idx", _ID64, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_ledger_hashes")),
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute(_PG_SPLIT)
    else:
        _sqlite_split(conn)
    op.drop_column("ledger_leaves", "hashes")
