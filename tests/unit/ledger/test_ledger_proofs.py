"""Roots and proofs from stored hashes against the RFC's own recursion (MTH, PATH,
PROOF), and RFC 9162 verification: it accepts every proof the ledger makes and refuses
any single flipped bit, a wrong index, a wrong size, a path cut short or padded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_log import LOG, CountingReader, Log
from rfc6962_model import mth, path, proof

from ctplhub.ledger import (
    EMPTY_ROOT,
    InvalidTreeRange,
    ProofRejected,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    plan_inclusion_proof,
    root_from_inclusion_proof,
    streaming_root,
    tree_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

MAX = 300
sizes = st.integers(1, MAX)


def root(n: int) -> bytes:
    return tree_root(n, LOG.read_hashes)


def flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX))
def test_stored_hash_roots_equal_mth(n: int) -> None:
    reader = CountingReader(LOG)
    want = mth(LOG.entries[:n])
    assert tree_root(n, reader) == want
    assert len(reader.calls) == (1 if n else 0)
    assert tree_hash(LOG.leaves[:n]) == want
    assert streaming_root(LOG.leaves[:n]) == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_roots_and_proofs_over_arbitrary_entries(entries: list[bytes]) -> None:
    log = Log(entries)
    n = len(entries)
    assert tree_root(n, log.read_hashes) == mth(entries)
    for m in range(n):
        assert inclusion_proof(m, n, log.read_hashes) == path(m, entries)
    for first in range(1, n):
        assert consistency_proof(first, n, log.read_hashes) == proof(first, entries)


@settings(max_examples=200, deadline=None)
@given(sizes, st.data())
def test_inclusion_proofs_equal_path_and_verify(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(0, n - 1), label="leaf_index")
    reader = CountingReader(LOG)
    got = inclusion_proof(m, n, reader)
    assert got == path(m, LOG.entries[:n])
    assert len(reader.calls) <= 1
    verify_inclusion(m, n, LOG.leaves[m], got, root(n))
    assert root_from_inclusion_proof(m, n, LOG.leaves[m], got) == root(n)


@settings(max_examples=200, deadline=None)
@given(sizes, st.data())
def test_consistency_proofs_equal_proof_and_verify(second: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(1, second), label="first")
    reader = CountingReader(LOG)
    got = consistency_proof(first, second, reader)
    assert got == (proof(first, LOG.entries[:second]) if first < second else [])
    assert len(reader.calls) <= 1
    verify_consistency(first, second, root(first), root(second), got)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, MAX), st.data())
def test_inclusion_verification_refuses_any_change(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(0, n - 1), label="leaf_index")
    good = inclusion_proof(m, n, LOG.read_hashes)
    bit = data.draw(st.integers(0, 255), label="bit")
    leaf, top = LOG.leaves[m], root(n)
    # A flipped bit anywhere: in the path, the leaf, the root.
    position = data.draw(st.integers(0, len(good) - 1), label="position")
    bad = list(good)
    bad[position] = flip(bad[position], bit)
    for args in (
        (m, n, leaf, bad, top),
        (m, n, flip(leaf, bit), good, top),
        (m, n, leaf, good, flip(top, bit)),
    ):
        with pytest.raises(ProofRejected):
            verify_inclusion(*args)
    # Another index, with this leaf or with that index's own leaf.
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m), label="other index")
    for claimed_leaf in (leaf, LOG.leaves[other]):
        with pytest.raises(ProofRejected):
            verify_inclusion(other, n, claimed_leaf, good, top)
    # Another size, with that size's true root.
    size = data.draw(st.integers(m + 1, MAX + 1).filter(lambda s: s != n), label="other size")
    with pytest.raises(ProofRejected):
        verify_inclusion(m, size, leaf, good, root(size))
    # A path cut short or padded.
    with pytest.raises(ProofRejected):
        verify_inclusion(m, n, leaf, good[:-1], top)
    with pytest.raises(ProofRejected):
        verify_inclusion(m, n, leaf, [*good, good[-1]], top)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, MAX), st.data())
def test_consistency_verification_refuses_any_change(second: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(1, second - 1), label="first")
    good = consistency_proof(first, second, LOG.read_hashes)
    r1, r2 = root(first), root(second)
    bit = data.draw(st.integers(0, 255), label="bit")
    position = data.draw(st.integers(0, len(good) - 1), label="position")
    bad = list(good)
    bad[position] = flip(bad[position], bit)
    for args in (
        (first, second, r1, r2, bad),
        (first, second, flip(r1, bit), r2, good),
        (first, second, r1, flip(r2, bit), good),
        (first, second, r1, r2, good[:-1]),
        (first, second, r1, r2, [*good, good[-1]]),
        (first, second, r1, r2, []),
    ):
        with pytest.raises(ProofRejected):
            verify_consistency(*args)
    # Other sizes, each with its true root.
    other_first = data.draw(
        st.integers(1, second).filter(lambda s: s != first), label="other first"
    )
    with pytest.raises(ProofRejected):
        verify_consistency(other_first, second, root(other_first), r2, good)
    other_second = data.draw(
        st.integers(first, MAX + 1).filter(lambda s: s != second), label="other second"
    )
    with pytest.raises(ProofRejected):
        verify_consistency(first, other_second, r1, root(other_second), good)


def test_equal_sizes_need_an_empty_path_and_equal_roots() -> None:
    verify_consistency(5, 5, root(5), root(5), [])
    with pytest.raises(ProofRejected):
        verify_consistency(5, 5, root(5), root(6), [])
    with pytest.raises(ProofRejected):
        verify_consistency(5, 5, root(5), root(5), [root(5)])


def test_verification_refuses_impossible_positions_and_malformed_hashes() -> None:
    good = inclusion_proof(3, 8, LOG.read_hashes)
    for m, n in ((8, 8), (-1, 8), (0, 0)):
        with pytest.raises(ProofRejected):
            verify_inclusion(m, n, LOG.leaves[3], good, root(8))
    with pytest.raises(ProofRejected):
        verify_inclusion(3, 8, LOG.leaves[3][:31], good, root(8))
    with pytest.raises(ProofRejected):
        verify_inclusion(3, 8, LOG.leaves[3], [*good[:-1], good[-1] + b"\x00"], root(8))
    with pytest.raises(ProofRejected):
        verify_consistency(0, 8, EMPTY_ROOT, root(8), [])
    with pytest.raises(ProofRejected):
        verify_consistency(8, 4, root(8), root(4), [])


def test_proofs_refuse_positions_outside_the_tree() -> None:
    for m, n in ((0, 0), (5, 5), (-1, 3)):
        with pytest.raises(InvalidTreeRange):
            plan_inclusion_proof(m, n)
    for first, second in ((0, 5), (6, 5)):
        with pytest.raises(InvalidTreeRange):
            consistency_proof(first, second, LOG.read_hashes)
    with pytest.raises(InvalidTreeRange):
        tree_root(-1, LOG.read_hashes)
    assert tree_root(0, LOG.read_hashes) == EMPTY_ROOT == mth([])


def test_the_leaf_hash_is_domain_separated_from_the_node_hash() -> None:
    # RFC 9162 §2.1.1: a leaf whose bytes are two child hashes must not hash like them.
    a, b = LOG.leaves[0], LOG.leaves[1]
    assert leaf_hash(a + b) != mth(LOG.entries[:2])
