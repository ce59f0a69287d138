"""Compact ranges: the right edge of a tree in O(log n) hashes, for appending without
reading the tree and for recomputing a root in one streaming pass.

After ``n`` leaves the state is the roots of the perfect subtrees tiling ``[0, n)``, one
per 1-bit of ``n``, largest first (transparency-dev/merkle ``compact/range.go``). Appending
a leaf merges it with as many of those roots as ``n`` has trailing 1-bits; every merge
makes a node whose subtree just became complete, which is exactly what the stored-hash
scheme of ``ledger.storage`` keeps, at consecutive indexes.

A batch of 10,000 events therefore reads the old tree's compact range once (the same
indexes as its root) and computes everything else in memory; the hashes it produced also
answer every receipt's inclusion proof in the new tree (``AppendedBatch.inclusion_proofs``
for all of them in one walk, or ``AppendedBatch.read_hashes`` as a reader).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256

from ctplhub.ledger.errors import InvalidTreeRange, StoredHashesMissing
from ctplhub.ledger.hashing import EMPTY_ROOT, HASH_SIZE
from ctplhub.ledger.proofs import plan_tree_root
from ctplhub.ledger.storage import (
    HashReader,
    StoredHash,
    fold_subtrees,
    read_checked,
    subtree_indexes,
)

_NODE = b"\x01"


class CompactRange:
    """The compact range ``[0, size)``: a mutable accumulator for one pass or one batch."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise InvalidTreeRange(f"tree size must be >= 0, got {size}")
        if len(hashes) != size.bit_count():
            raise StoredHashesMissing(
                f"a tree of {size} leaves has {size.bit_count()} compact-range hashes, "
                f"got {len(hashes)}"
            )
        if any(len(value) != HASH_SIZE for value in hashes):
            raise StoredHashesMissing(f"compact-range hashes must be {HASH_SIZE} bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, largest (leftmost) first."""
        return tuple(self._hashes)

    def root(self) -> bytes:
        """MTH of ``[0, size)``: fold the subtree roots from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        current = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            current = sha256(_NODE + left + current).digest()
        return current

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves, keeping nothing but the edge: the audit's streaming root
        (one leaf and on average one node hash per leaf; O(log n) memory)."""
        stack = self._hashes
        size = self._size
        for current in leaf_hashes:
            merges = size
            while merges & 1:
                current = sha256(_NODE + stack.pop() + current).digest()
                merges >>= 1
            stack.append(current)
            size += 1
        self._size = size

    def iter_append(self, leaf_hashes: Iterable[bytes]) -> Iterator[StoredHash]:
        """Append many leaves, yielding every hash to store in ascending index order.

        From an empty range this is every stored hash of the log as it must be, index
        0, 1, 2, ... in order, each leaf's run contiguous (``storage.hashes_per_leaf``
        makes them the leaves' rows): what the auditor compares with the stored ones.
        """
        stack = self._hashes
        size = self._size
        for leaf in leaf_hashes:
            # Leaf ``size`` is stored at stored_hash_index(0, size) = 2·size - popcount,
            # and the nodes it completes follow it one by one. The range is brought up
            # to date before anything is yielded, so a consumer that stops early leaves
            # it whole.
            index = 2 * size - size.bit_count()
            current = leaf
            completed: list[bytes] = []
            merges = size
            while merges & 1:
                current = sha256(_NODE + stack.pop() + current).digest()
                completed.append(current)
                merges >>= 1
            stack.append(current)
            size += 1
            self._size = size
            yield StoredHash(index, leaf)
            for node in completed:
                index += 1
                yield StoredHash(index, node)

    def append_rows(self, leaf_hashes: Iterable[bytes]) -> list[bytes]:
        """Append many leaves, returning each leaf's stored hashes concatenated (its leaf
        hash, then the nodes it completes): what ``hashes_per_leaf`` makes of
        ``iter_append``'s hashes, without an object per hash (the ingest path)."""
        stack = self._hashes
        size = self._size
        rows: list[bytes] = []
        for leaf in leaf_hashes:
            current = row = leaf
            merges = size
            while merges & 1:
                current = sha256(_NODE + stack.pop() + current).digest()
                row += current
                merges >>= 1
            stack.append(current)
            size += 1
            rows.append(row)
        self._size = size
        return rows


def streaming_root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of a whole stream of leaf hashes in one pass with O(log n) memory."""
    edge = CompactRange()
    edge.extend(leaf_hashes)
    return edge.root()


@dataclass(frozen=True, slots=True)
class AppendedBatch:
    """What appending a batch produced: the hashes to store (ascending, contiguous
    indexes), the new root, and every hash it knows, which serves the inclusion proof of
    each new leaf (and the consistency proof from ``old_size``) without another read."""

    old_size: int
    new_size: int
    stored: tuple[StoredHash, ...]
    root: bytes
    known: dict[int, bytes]

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """A ``HashReader`` over what the batch knows; refuses an index it does not know
        (a proof of an older leaf needs the store)."""
        missing = [index for index in indexes if index not in self.known]
        if missing:
            raise StoredHashesMissing(
                f"the batch does not hold stored hashes {missing[:5]}; read them from the store"
            )
        return [self.known[index] for index in indexes]

    def inclusion_proofs(self) -> list[list[bytes]]:
        """The audit path of every new leaf (``old_size`` first) in the new tree: the
        receipts of the whole batch in one walk down the tree, each sibling hash made
        once, instead of one plan per leaf (O(k·log n) list appends, no planning).
        Equal to ``inclusion_proof(leaf, new_size, self.read_hashes)`` leaf by leaf."""
        first, size = self.old_size, self.new_size
        paths: list[list[bytes]] = [[] for _ in range(size - first)]
        pending = [(0, size)] if size > first else []
        while pending:
            lo, hi = pending.pop()
            if hi - lo == 1:
                continue
            mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))  # RFC 9162's k
            if first < mid:  # new leaves on the left: their sibling is the right side
                sibling = self._range_hash(mid, hi)
                for leaf in range(max(lo, first), mid):
                    paths[leaf - first].append(sibling)
                pending.append((lo, mid))
            sibling = self._range_hash(lo, mid)  # every range here ends past ``first``
            for leaf in range(max(mid, first), hi):
                paths[leaf - first].append(sibling)
            pending.append((mid, hi))
        for path in paths:
            path.reverse()  # collected root-side first; the RFC lists leaf-side first
        return paths

    def _range_hash(self, lo: int, hi: int) -> bytes:
        width = hi - lo
        if width & (width - 1) == 0:  # perfect: the one hash stored with leaf hi - 1
            last = hi - 1
            index = 2 * last - last.bit_count() + width.bit_length() - 1
            if index in self.known:
                return self.known[index]
        indexes: list[int] = []
        subtree_indexes(lo, hi, indexes)
        hashes = self.read_hashes(indexes)
        return fold_subtrees(hashes, 0, len(hashes))


def compact_range_indexes(tree_size: int) -> tuple[int, ...]:
    """The stored indexes of the compact range of ``[0, tree_size)``: what to read before
    appending a batch (the same ones as the root; at most ``1 + log2(n)``)."""
    return plan_tree_root(tree_size).indexes


def append_batch_to(edge: CompactRange, leaf_hashes: Iterable[bytes]) -> AppendedBatch:
    """Append a batch to a compact range the caller already read (the async path:
    ``compact_range_indexes``, one query, ``CompactRange(n, hashes)``, then this)."""
    old_size = edge.size
    known = dict(zip(compact_range_indexes(old_size), edge.hashes, strict=True))
    stored = tuple(edge.iter_append(leaf_hashes))
    known.update(stored)
    return AppendedBatch(old_size, edge.size, stored, edge.root(), known)


def append_batch(
    tree_size: int, leaf_hashes: Iterable[bytes], read_hashes: HashReader
) -> AppendedBatch:
    """Append leaves ``tree_size, tree_size + 1, ...``, reading only the old compact range
    (one call, O(log n) hashes). Equal to appending them one by one with
    ``stored_hashes_for_append``."""
    indexes = compact_range_indexes(tree_size)
    edge = CompactRange(tree_size, read_checked(read_hashes, indexes))
    return append_batch_to(edge, leaf_hashes)


class AppendedRows:
    """What appending a batch produced, as the store keeps it: each new leaf's row of
    stored hashes (``rows[i]`` for leaf ``old_size + i``) and the new root. The hashes
    as an ``AppendedBatch`` (for the receipts' inclusion proofs) are made only when asked
    for: a batch import never asks."""

    __slots__ = ("_batch", "_edge", "new_size", "old_size", "root", "rows")

    def __init__(
        self, old_size: int, edge: tuple[bytes, ...], rows: list[bytes], root: bytes
    ) -> None:
        self.old_size = old_size
        self.new_size = old_size + len(rows)
        self.rows = rows
        self.root = root
        self._edge = edge
        self._batch: AppendedBatch | None = None

    def batch(self) -> AppendedBatch:
        if self._batch is None:
            known = dict(zip(compact_range_indexes(self.old_size), self._edge, strict=True))
            stored: list[StoredHash] = []
            for leaf, row in enumerate(self.rows, start=self.old_size):
                first = 2 * leaf - leaf.bit_count()
                for level in range(len(row) // HASH_SIZE):
                    stored.append(
                        StoredHash(first + level, row[level * HASH_SIZE : (level + 1) * HASH_SIZE])
                    )
            known.update(stored)
            self._batch = AppendedBatch(
                self.old_size, self.new_size, tuple(stored), self.root, known
            )
        return self._batch


def append_rows(
    tree_size: int, leaf_hashes: Iterable[bytes], read_hashes: HashReader
) -> AppendedRows:
    """``append_batch`` for a store that keeps one row per leaf: reads only the old
    compact range (one call), returns each leaf's row (``hashes_per_leaf`` of
    ``append_batch(...).stored``) and the new root."""
    indexes = compact_range_indexes(tree_size)
    edge = CompactRange(tree_size, read_checked(read_hashes, indexes))
    old_edge = edge.hashes
    rows = edge.append_rows(leaf_hashes)
    return AppendedRows(tree_size, old_edge, rows, edge.root())
