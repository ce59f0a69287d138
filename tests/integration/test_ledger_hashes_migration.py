"""Migration 0009 on both engines: a ledger stored the old way (a ``ledger_hashes`` row
per stored hash) moves its hashes into the rows of the leaves that wrote them, and gives
the same roots and proofs; the downgrade gives the same ``ledger_hashes`` back."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text

from ctplhub.ledger import (
    CompactRange,
    consistency_proof,
    hashes_per_leaf,
    inclusion_proof,
    leaf_hash,
    tree_root,
)
from ctplhub.store.readers.ledger import sync_hash_reader
from ctplhub.store.schema import alembic_config, migrate
from ctplhub.store.tables import ledger_leaves

BEFORE = "0008"  # the revision 0009 upgrades from


def entries(n: int) -> list[bytes]:
    return [b'{"n":%d}' % i for i in range(n)]


def old_log(engine: Engine, n: int, *, hashes: bool = True) -> list[tuple[int, bytes]]:
    """``n`` leaves stored as before 0009 (leaf rows, and a ``ledger_hashes`` row per
    stored hash unless ``hashes`` is false); returns those ``(idx, hash)`` rows."""
    stored = list(CompactRange().iter_append(leaf_hash(entry) for entry in entries(n)))
    with engine.begin() as conn:
        if n:
            conn.execute(
                text(
                    "INSERT INTO ledger_leaves (leaf_index, event_id, entry, salts_enc) "
                    "VALUES (:leaf, :event, :entry, :salts)"
                ),
                [
                    {"leaf": i, "event": 1000 + i, "entry": entry, "salts": b"s"}
                    for i, entry in enumerate(entries(n))
                ],
            )
        if hashes and stored:
            conn.execute(
                text("INSERT INTO ledger_hashes (idx, hash) VALUES (:idx, :hash)"),
                [{"idx": idx, "hash": value} for idx, value in stored],
            )
    return [(idx, value) for idx, value in stored]


def ledger_hashes_rows(engine: Engine) -> list[tuple[int, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT idx, hash FROM ledger_hashes ORDER BY idx"))
        return [(int(idx), bytes(value)) for idx, value in rows]


def leaf_hashes_column(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ledger_leaves.c.hashes).order_by(ledger_leaves.c.leaf_index)
        ).scalars()
        return [bytes(value) for value in rows]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 300])
def test_upgrade_moves_every_hash_into_its_leaf_and_keeps_roots_and_proofs(
    blank: Engine, n: int
) -> None:
    migrate(blank, BEFORE)
    stored = old_log(blank, n)
    leaves = [leaf_hash(entry) for entry in entries(n)]
    old = dict(stored)

    def read_old(indexes: Sequence[int]) -> list[bytes]:
        return [old[index] for index in indexes]

    root = tree_root(n, read_old)
    inclusion = [inclusion_proof(m, n, read_old) for m in range(n)]
    consistency = [consistency_proof(m, n, read_old) for m in range(1, n)]

    migrate(blank)

    assert "ledger_hashes" not in inspect(blank).get_table_names()
    column = {c["name"]: c for c in inspect(blank).get_columns("ledger_leaves")}["hashes"]
    assert column["nullable"] is False
    assert leaf_hashes_column(blank) == hashes_per_leaf(list(CompactRange().iter_append(leaves)))
    with blank.connect() as conn:
        read = sync_hash_reader(conn)
        assert tree_root(n, read) == root
        assert [inclusion_proof(m, n, read) for m in range(n)] == inclusion
        assert [consistency_proof(m, n, read) for m in range(1, n)] == consistency

    # And back: the same rows of ledger_hashes, the column gone.
    config = alembic_config()
    with blank.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)
    assert ledger_hashes_rows(blank) == stored
    assert "hashes" not in {c["name"] for c in inspect(blank).get_columns("ledger_leaves")}


def test_leaves_with_no_stored_hash_get_an_empty_value(blank: Engine) -> None:
    """A log whose hashes are gone (a store tampered with): the upgrade still runs, and
    each leaf's ``hashes`` is empty, which the audit names."""
    migrate(blank, BEFORE)
    old_log(blank, 5, hashes=False)
    migrate(blank)
    assert leaf_hashes_column(blank) == [b""] * 5
