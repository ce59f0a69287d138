"""The stored-hash index scheme (tlog's): closed form against tlog's loop, dense and
append-only numbering, single-leaf and batch appends that store the same thing, and the
O(log n) read bound at ten million leaves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_log import LOG, CountingReader, Log
from rfc6962_model import mth

from ctplhub.ledger import (
    CompactRange,
    StoredHash,
    StoredHashesMissing,
    append_batch,
    append_batch_to,
    append_indexes,
    append_rows,
    compact_range_indexes,
    consistency_proof,
    hashes_from_rows,
    hashes_per_leaf,
    inclusion_proof,
    leaf_hash,
    leaf_hash_count,
    leaves_holding,
    plan_consistency_proof,
    plan_inclusion_proof,
    plan_tree_root,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_home,
    stored_hash_index,
    stored_hash_leaves,
    stored_hashes_for_append,
    tree_root,
)
from ctplhub.ledger.storage import read_checked

TEN_MILLION = 10_000_000


def tlog_stored_hash_index(level: int, n: int) -> int:
    """Go's StoredHashIndex, loop for loop."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


@given(st.integers(0, 40), st.integers(0, 2**40))
def test_index_closed_form_equals_tlogs_loop(level: int, n: int) -> None:
    assert stored_hash_index(level, n) == tlog_stored_hash_index(level, n)


@given(st.integers(0, 30), st.integers(0, 2**30))
def test_split_inverts_the_index(level: int, n: int) -> None:
    assert split_stored_hash_index(stored_hash_index(level, n)) == (level, n)


def test_indexes_are_dense_and_name_the_leaves_below() -> None:
    # Every index up to the count of a 1,000-leaf tree belongs to exactly one node.
    count = stored_hash_count(1000)
    nodes = [split_stored_hash_index(i) for i in range(count)]
    assert len(set(nodes)) == count
    assert all(stored_hash_index(level, n) == i for i, (level, n) in enumerate(nodes))
    assert stored_hash_leaves(stored_hash_index(3, 5)) == range(40, 48)
    with pytest.raises(ValueError):
        split_stored_hash_index(-1)


def test_the_shared_log_holds_exactly_the_counted_hashes_each_a_subtree_hash() -> None:
    assert len(LOG.store) == stored_hash_count(len(LOG.leaves))
    for i in range(0, len(LOG.store), 7):
        leaves = stored_hash_leaves(i)
        assert LOG.store[i] == mth(LOG.entries[leaves.start : leaves.stop])


@given(st.integers(0, 2**40))
def test_an_append_reads_at_most_log_n_hashes_it_has_stored_already(n: int) -> None:
    indexes = append_indexes(n)
    assert indexes == sorted(indexes)
    assert len(indexes) <= max(1, n).bit_length()
    assert all(i < stored_hash_count(n) for i in indexes)


def test_an_append_stores_from_the_leaf_index_on_one_hash_per_completed_subtree() -> None:
    reader = CountingReader(LOG)
    stored = stored_hashes_for_append(511, LOG.leaves[511], reader)
    # Leaf 511 completes the subtrees of 2, 4, ... 512 leaves: ten hashes, side by side,
    # ending where the 512-leaf tree's store ends.
    assert [s.idx for s in stored] == list(range(stored_hash_index(0, 511), 1023))
    assert stored_hash_count(512) == 1023
    assert reader.calls == [append_indexes(511)] and len(reader.calls[0]) == 9
    assert stored[-1].hash == mth(LOG.entries[:512])


def test_a_short_or_malformed_read_is_refused() -> None:
    with pytest.raises(StoredHashesMissing):
        stored_hashes_for_append(3, LOG.leaves[3], lambda ix: [])
    with pytest.raises(StoredHashesMissing):
        tree_root(5, lambda ix: [b"short"] * len(ix))
    with pytest.raises(StoredHashesMissing):
        plan_tree_root(5).assemble([])


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 400), st.integers(0, 300))
def test_a_batch_stores_what_one_by_one_appends_store(old: int, count: int) -> None:
    leaves = LOG.leaves[old : old + count] if old + count <= 1024 else None
    if leaves is None:
        leaves = [leaf_hash(b"new %d" % i) for i in range(count)]
    # One by one, on a copy of the old store.
    store = LOG.store[: stored_hash_count(old)]
    for n, leaf in enumerate(leaves, start=old):
        for s in stored_hashes_for_append(n, leaf, lambda ix: [store[i] for i in ix]):
            assert s.idx == len(store)
            store.append(s.hash)
    reader = CountingReader(LOG)
    batch = append_batch(old, leaves, reader)
    assert [s.hash for s in batch.stored] == store[stored_hash_count(old) :]
    assert [s.idx for s in batch.stored] == list(range(stored_hash_count(old), len(store)))
    assert (batch.old_size, batch.new_size) == (old, old + count)
    # The batch read the old edge once, nothing else, and knows the new root.
    assert reader.calls == ([list(compact_range_indexes(old))] if old.bit_count() else [])
    assert batch.root == tree_root(old + count, lambda ix: [store[i] for i in ix])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 600), st.integers(1, 200))
def test_a_batch_answers_its_receipts_without_reading_again(old: int, count: int) -> None:
    new = old + count
    batch = append_batch(old, LOG.leaves[old:new], LOG.read_hashes)
    from_store = [inclusion_proof(leaf, new, LOG.read_hashes) for leaf in range(old, new)]
    assert [inclusion_proof(leaf, new, batch.read_hashes) for leaf in range(old, new)] == (
        from_store
    )
    assert batch.inclusion_proofs() == from_store  # the one-walk fast path
    if old:
        assert consistency_proof(old, new, batch.read_hashes) == consistency_proof(
            old, new, LOG.read_hashes
        )
    if old >= 2:
        with pytest.raises(StoredHashesMissing):  # an old leaf's proof needs the store
            inclusion_proof(0, new, batch.read_hashes)


def test_a_batch_from_a_compact_range_read_by_the_caller() -> None:
    edge = CompactRange(5, LOG.read_hashes(compact_range_indexes(5)))
    batch = append_batch_to(edge, LOG.leaves[5:9])
    assert batch.root == mth(LOG.entries[:9])
    assert batch.stored[0] == StoredHash(stored_hash_index(0, 5), LOG.leaves[5])
    with pytest.raises(StoredHashesMissing):
        CompactRange(5, [LOG.leaves[0]])


def _bound(n: int) -> float:
    return 2 * math.log2(n) + 2


@pytest.mark.parametrize(
    "leaf_index", [0, 1, 4_999_999, 8_388_607, 8_388_608, TEN_MILLION - 2, TEN_MILLION - 1]
)
def test_inclusion_at_ten_million_reads_log_n_hashes_in_one_call(leaf_index: int) -> None:
    calls: list[int] = []

    def synthetic(indexes: Sequence[int]) -> list[bytes]:
        calls.append(len(indexes))
        return [i.to_bytes(32, "big") for i in indexes]

    plan = plan_inclusion_proof(leaf_index, TEN_MILLION)
    assert len(plan.indexes) <= _bound(TEN_MILLION)
    assert max(plan.indexes) < stored_hash_count(TEN_MILLION)
    proof = inclusion_proof(leaf_index, TEN_MILLION, synthetic)
    assert calls == [len(plan.indexes)]
    assert len(proof) == len(plan.group_sizes) <= math.ceil(math.log2(TEN_MILLION))


@settings(max_examples=150)
@given(st.integers(1, TEN_MILLION), st.data())
def test_every_plan_near_ten_million_is_logarithmic_and_already_stored(
    size: int, data: st.DataObject
) -> None:
    size = TEN_MILLION - size + 1
    leaf = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size))
    bound = _bound(size)
    written = stored_hash_count(size)
    for plan in (
        plan_tree_root(size),
        plan_inclusion_proof(leaf, size),
        plan_consistency_proof(first, size),
    ):
        assert len(plan.indexes) <= bound
        assert len(set(plan.indexes)) == len(plan.indexes)
        assert all(0 <= i < written for i in plan.indexes)
    assert len(append_indexes(size)) <= math.log2(size) + 1
    assert len(compact_range_indexes(size)) == size.bit_count()


def test_the_shared_log_is_built_from_distinct_entries() -> None:
    assert isinstance(LOG, Log)
    assert len(set(LOG.leaves)) == len(LOG.leaves)


# --- Where the store keeps a stored hash: in the row of the leaf that wrote it. ---------


@given(st.integers(0, 30), st.integers(0, 2**30))
def test_a_node_lives_in_the_row_of_its_last_leaf_at_its_level(level: int, n: int) -> None:
    leaf, at = stored_hash_home(stored_hash_index(level, n))
    assert (leaf, at) == (((n + 1) << level) - 1, level)
    assert stored_hash_index(at, leaf >> at) == stored_hash_index(level, n)


@given(st.integers(0, 2**40))
def test_a_leafs_row_holds_its_consecutive_indexes(leaf: int) -> None:
    """Leaf ``m`` writes ``leaf_hash_count(m)`` hashes from ``stored_hash_index(0, m)`` on,
    each at home in ``m``'s row at its level, and the next leaf's start right after."""
    first = stored_hash_index(0, leaf)
    count = leaf_hash_count(leaf)
    assert count == 1 + (len(bin(leaf)) - len(bin(leaf).rstrip("1")))  # trailing 1-bits
    assert [stored_hash_home(first + level) for level in range(count)] == [
        (leaf, level) for level in range(count)
    ]
    assert stored_hash_index(0, leaf + 1) == first + count


def test_every_index_has_one_home_and_the_rows_tile_the_indexes() -> None:
    count = stored_hash_count(1000)
    homes = [stored_hash_home(i) for i in range(count)]
    assert len(set(homes)) == count
    assert sum(leaf_hash_count(m) for m in range(1000)) == count
    with pytest.raises(ValueError):
        leaf_hash_count(-1)


@given(st.integers(0, 300), st.integers(1, 60))
def test_a_batchs_hashes_group_into_its_rows(old: int, added: int) -> None:
    """``hashes_per_leaf`` of what a batch stores is each new leaf's row, and reading back
    from those rows gives every hash the batch stored."""
    new = min(old + added, len(LOG.leaves))
    old = min(old, new)
    batch = append_batch(old, LOG.leaves[old:new], LOG.read_hashes)
    rows = dict(enumerate(hashes_per_leaf(batch.stored), start=old))
    assert list(rows) == list(range(old, new))
    for leaf, value in rows.items():
        first = stored_hash_index(0, leaf)
        assert value == b"".join(LOG.store[first : first + leaf_hash_count(leaf)])
    indexes = [idx for idx, _ in batch.stored]
    assert leaves_holding(reversed(indexes)) == list(range(old, new))
    assert hashes_from_rows(indexes, rows) == [value for _, value in batch.stored]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 600), st.integers(0, 200))
def test_rows_appended_directly_are_the_batchs_rows(old: int, count: int) -> None:
    """``append_rows`` (the ingest path: each leaf's row, no object per hash) writes what
    ``append_batch`` and ``hashes_per_leaf`` write, reads the same once, and its batch,
    made on demand, is ``append_batch``'s (so the receipts' proofs are too)."""
    new = min(old + count, len(LOG.leaves))
    old = min(old, new)
    expected = append_batch(old, LOG.leaves[old:new], LOG.read_hashes)
    reader = CountingReader(LOG)
    appended = append_rows(old, LOG.leaves[old:new], reader)
    assert reader.calls == ([list(compact_range_indexes(old))] if old.bit_count() else [])
    assert appended.rows == hashes_per_leaf(expected.stored)
    assert (appended.old_size, appended.new_size, appended.root) == (old, new, expected.root)
    assert appended.batch() == expected
    assert appended.batch().inclusion_proofs() == expected.inclusion_proofs()


def test_a_batch_that_does_not_start_or_end_on_a_row_is_refused() -> None:
    stored = list(CompactRange().iter_append(LOG.leaves[:4]))
    assert hashes_per_leaf([]) == []
    with pytest.raises(ValueError, match="does not start"):
        hashes_per_leaf(stored[2:])  # leaf 1's second hash first
    with pytest.raises(ValueError, match="cut short"):
        hashes_per_leaf(stored[:-1])  # leaf 3 without its last subtree


def test_a_missing_or_short_row_reads_short_and_is_refused() -> None:
    rows = {leaf: b"".join(LOG.store[stored_hash_index(0, leaf) :][:2]) for leaf in range(4)}
    rows[3] = rows[3][:40]  # leaf 3 holds 3 hashes; cut inside its second
    assert hashes_from_rows([stored_hash_index(0, 9)], rows) == []
    with pytest.raises(StoredHashesMissing):
        read_checked(lambda ids: hashes_from_rows(ids, rows), [stored_hash_index(1, 1)])
