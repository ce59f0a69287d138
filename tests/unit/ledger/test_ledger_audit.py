"""Audit pieces: the streamed store equals the appended store, the streaming root equals
the RFC's, and a tampered log is named at the exact entry, with what was done to it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_log import LOG
from rfc6962_model import mth

from ctplhub.ledger import (
    CompactRange,
    Divergence,
    DivergenceKind,
    find_divergence,
    stored_hash_leaves,
    streaming_root,
)

LEAVES = LOG.leaves


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 1024))
def test_streaming_recomputes_the_store_and_the_root(n: int) -> None:
    edge = CompactRange()
    streamed = list(edge.iter_append(LEAVES[:n]))
    assert [s.idx for s in streamed] == list(range(len(streamed)))
    assert [s.hash for s in streamed] == LOG.store[: len(streamed)]
    assert edge.size == n and edge.root() == streaming_root(iter(LEAVES[:n])) == mth(
        LOG.entries[:n]
    )
    assert len(edge.hashes) == n.bit_count()


def test_a_consumer_that_stops_early_leaves_the_range_whole() -> None:
    edge = CompactRange()
    stream = edge.iter_append(LEAVES[:8])
    # Leaves 0..3 store 7 hashes; the 8th is leaf 4's, yielded once leaf 4 is in.
    for _ in range(8):
        next(stream)
    assert edge.size == 5
    assert edge.root() == mth(LOG.entries[:5])


def test_equal_streams_have_no_divergence() -> None:
    assert find_divergence(iter(LEAVES), iter(LEAVES)) is None
    assert find_divergence([], []) is None


@given(st.integers(0, 99))
def test_an_altered_entry_is_named(i: int) -> None:
    stored = list(LEAVES[:100])
    stored[i] = LEAVES[500]
    assert find_divergence(LEAVES[:100], stored) == Divergence(
        i, DivergenceKind.ALTERED, LEAVES[i], LEAVES[500]
    )


@given(st.integers(0, 100))
def test_an_inserted_entry_is_named(i: int) -> None:
    stored = [*LEAVES[:i], LEAVES[700], *LEAVES[i:100]]
    assert find_divergence(LEAVES[:100], stored) == Divergence(
        i, DivergenceKind.INSERTED, LEAVES[i] if i < 100 else None, LEAVES[700]
    )


@given(st.integers(0, 99))
def test_a_removed_entry_is_named(i: int) -> None:
    stored = [*LEAVES[:i], *LEAVES[i + 1 : 100]]
    found = find_divergence(iter(LEAVES[:100]), iter(stored))
    assert found is not None
    assert (found.index, found.kind, found.expected) == (i, DivergenceKind.REMOVED, LEAVES[i])


def test_swapped_entries_are_altered() -> None:
    stored = [LEAVES[1], LEAVES[0], *LEAVES[2:10]]
    found = find_divergence(LEAVES[:10], stored)
    assert found is not None and (found.index, found.kind) == (0, DivergenceKind.ALTERED)


def test_a_bad_stored_hash_names_the_leaves_under_it() -> None:
    expected = (s.hash for s in CompactRange().iter_append(LEAVES[:64]))
    stored = list(LOG.store[:127])
    stored[45] = bytes(32)
    found = find_divergence(expected, stored)
    assert found is not None and found.index == 45
    leaves = stored_hash_leaves(found.index)
    assert LOG.store[45] == mth(LOG.entries[leaves.start : leaves.stop])
