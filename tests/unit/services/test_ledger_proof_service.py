"""The ledger's read use cases (services/ledger_proofs) over an in-memory fake of the
store: proofs equal the pure core's, every answer is bounded by the latest signed head,
bad parameters are the caller's error, and the empty log has a head signed on the spot."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.errors import ValidationFailed
from ctplhub.ledger import (
    EMPTY_ROOT,
    StoredHashesMissing,
    TreeHead,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    stored_hash_count,
    stored_hashes_for_append,
    tree_root,
)
from ctplhub.services.ledger_proofs import (
    MAX_ENTRIES,
    LedgerEntry,
    LedgerProofs,
    SignedTreeHead,
    TreeSizeTooLarge,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ENTRIES = [b"entry %d" % n for n in range(200)]


def _store(entries: Sequence[bytes]) -> list[bytes]:
    store: list[bytes] = []
    for n, entry in enumerate(entries):
        for stored in stored_hashes_for_append(
            n, leaf_hash(entry), lambda i: [store[x] for x in i]
        ):
            store.append(stored.hash)
    return store


STORE = _store(ENTRIES)


class FakeReader:
    """The ledger tables in memory, with the store's contract: one call per read."""

    def __init__(self, signed_sizes: Sequence[int], store: list[bytes] = STORE) -> None:
        self.store = store
        self.heads = {
            size: SignedTreeHead(TreeHead(size, tree_root(size, self.read), size), "k", b"s" * 64)
            for size in signed_sizes
        }
        self.reads = 0
        self.grow_after_refusal: int | None = None

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.store[i] for i in indexes]

    async def latest_tree_head(self) -> SignedTreeHead | None:
        return self.heads[max(self.heads)] if self.heads else None

    async def tree_head(self, tree_size: int) -> SignedTreeHead | None:
        return self.heads.get(tree_size)

    async def hashes(self, indexes: Sequence[int], *, tree_size: int) -> list[bytes] | None:
        self.reads += 1
        if tree_size > max(self.heads, default=0):
            if self.grow_after_refusal is not None:  # another process signs meanwhile
                size = self.grow_after_refusal
                self.heads[size] = SignedTreeHead(TreeHead(size, EMPTY_ROOT, 0), "k", b"s" * 64)
            return None
        if any(i >= len(self.store) for i in indexes):
            raise StoredHashesMissing("short")
        return self.read(indexes)

    async def entries(self, start: int, end: int) -> list[LedgerEntry]:
        size = max(self.heads, default=0)
        return [
            LedgerEntry(n, ENTRIES[n], self.store[2 * n - n.bit_count()])
            for n in range(start, min(end, size))
        ]


def _never(head: TreeHead) -> SignedTreeHead:
    raise AssertionError("a stored head exists")


def _proofs(reader: FakeReader) -> LedgerProofs:
    return LedgerProofs(reader, _never, lambda: NOW)


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_equals_the_core_in_one_read(case: tuple[int, int]) -> None:
    leaf, size = case
    reader = FakeReader([200])
    proof = asyncio.run(_proofs(reader).inclusion(leaf, size))
    assert list(proof.audit_path) == inclusion_proof(leaf, size, reader.read)
    assert reader.reads == 1


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_equals_the_core_in_one_read(case: tuple[int, int]) -> None:
    first, second = case
    reader = FakeReader([200])
    proof = asyncio.run(_proofs(reader).consistency(first, second))
    assert list(proof.consistency_path) == consistency_proof(first, second, reader.read)
    assert reader.reads == 1


def test_a_size_past_the_signed_head_is_refused_with_the_current_size() -> None:
    reader = FakeReader([50, 100])
    with pytest.raises(TreeSizeTooLarge) as refused:
        asyncio.run(_proofs(reader).inclusion(0, 101))
    assert refused.value.current == 100 and refused.value.code == "validation_failed"
    with pytest.raises(TreeSizeTooLarge):
        asyncio.run(_proofs(reader).consistency(50, 150))


def test_a_log_that_grows_between_the_two_reads_is_read_again() -> None:
    reader = FakeReader([100])
    reader.grow_after_refusal = 150
    proof = asyncio.run(_proofs(reader).inclusion(3, 150))
    assert list(proof.audit_path) == inclusion_proof(3, 150, reader.read)
    assert reader.reads == 2


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.inclusion(5, 5), "leaf_index"),
        (lambda p: p.inclusion(-1, 5), "leaf_index"),
        (lambda p: p.inclusion(0, 2**53), "tree_size"),
        (lambda p: p.consistency(0, 5), "first"),
        (lambda p: p.consistency(6, 5), "second"),
        (lambda p: p.entries(5, 5), "end"),
        (lambda p: p.entries(-1, 5), "start"),
    ],
)
def test_bad_parameters_are_validation_failures_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        asyncio.run(call(_proofs(FakeReader([100]))))  # type: ignore[operator]
    assert refused.value.code == "validation_failed"
    assert refused.value.details[0]["field"] == field


def test_more_than_a_thousand_entries_is_range_too_large() -> None:
    proofs = _proofs(FakeReader([100]))
    assert len(asyncio.run(proofs.entries(0, MAX_ENTRIES))) == 100
    with pytest.raises(ValidationFailed) as refused:
        asyncio.run(proofs.entries(0, MAX_ENTRIES + 1))
    assert refused.value.code == "range_too_large"


def test_the_empty_log_answers_the_empty_tree_signed_now() -> None:
    signed: list[TreeHead] = []

    def sign(head: TreeHead) -> SignedTreeHead:
        signed.append(head)
        return SignedTreeHead(head, "k", b"s" * 64)

    head = asyncio.run(LedgerProofs(FakeReader([]), sign, lambda: NOW).latest_tree_head())
    assert head.head == TreeHead(0, EMPTY_ROOT, int(NOW.timestamp() * 1000)) == signed[0]


def test_the_fake_store_is_the_whole_log() -> None:
    assert len(STORE) == stored_hash_count(len(ENTRIES))
