"""Stored subtree hashes: which node of the tree is kept under which integer, and in
which leaf's row, so that a store can answer any root or proof with O(log n) reads.

The numbering is Go's ``golang.org/x/mod/sumdb/tlog`` ``StoredHashIndex`` (after Crosby
and Wallach, "Efficient Data Structures for Tamper-Evident Logging", §3.3): every node
whose subtree is complete gets one stable index; the hashes written when leaf ``n`` is
appended (its leaf hash, then one hash per subtree that leaf completes) take the
consecutive indexes from ``stored_hash_index(0, n)`` on. So the hashes are append-only and
dense: after ``n`` leaves there are exactly indexes ``0 .. stored_hash_count(n) - 1``.

The store keeps them in the rows of the leaves that wrote them (``ledger_leaves.hashes``,
docs/DECISIONS.md "Ledger: one row per leaf"): leaf ``m``'s row holds, concatenated,
its ``leaf_hash_count(m)`` hashes in index order, so the hash at level ``l`` sits at byte
``l * HASH_SIZE``. ``stored_hash_home`` maps an index to that (leaf, level), and
``hashes_per_leaf`` turns a batch's hashes into the rows' values.

Every read goes through a *batched* reader, ``HashReader``: one call with all the indexes
an operation needs, so a database adapter makes one round trip. An async adapter uses the
plans of ``ledger.proofs`` instead: indexes first, then one query, then pure assembly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from ctplhub.ledger.errors import StoredHashesMissing
from ctplhub.ledger.hashing import HASH_SIZE, node_hash

HashReader = Callable[[Sequence[int]], Sequence[bytes]]
"""Reads stored hashes by index, in the order asked, one hash per index. Indexes come
sorted ascending where the operation allows it (cheaper for B-tree range scans)."""


class StoredHash(NamedTuple):
    """One hash to persist under its stored index. A tuple rather than a dataclass: it is
    made by the tens of thousands per batch and binds straight to ``executemany``."""

    idx: int
    hash: bytes


def stored_hash_index(level: int, n: int) -> int:
    """The stored index of node ``n`` (counting from 0, left to right) at ``level``
    (0 = leaves): tlog's ``StoredHashIndex`` in closed form.

    Node (level, n) is written right after the last leaf of its subtree, leaf
    ``m = ((n + 1) << level) - 1``; leaf ``m``'s hash sits at ``m + m//2 + m//4 + ...``
    which is ``2m - popcount(m)``, and the completed subtrees follow it level by level.
    """
    last_leaf = ((n + 1) << level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The inverse of ``stored_hash_index``: ``(level, n)``. For the auditor, which finds a
    bad stored hash by index and must name the leaves under it."""
    if index < 0:
        raise ValueError(f"stored hash index must be >= 0, got {index}")
    # stored_hash_index(0, m) <= index < 2 * (m + 1), so the leaf that wrote it is in
    # [index // 2, index // 2 + log2(index)]: walk forward from the lower bound.
    leaf = index // 2
    start = stored_hash_index(0, leaf)
    while True:
        following = start + 1 + _trailing_zeros(leaf + 1)
        if following > index:
            break
        leaf += 1
        start = following
    level = index - start
    return level, leaf >> level


def stored_hash_home(index: int) -> tuple[int, int]:
    """The leaf whose row keeps stored hash ``index``, and the hash's level there (its
    offset in that row's hashes is ``level * HASH_SIZE``): node ``(level, n)`` is written
    by the last leaf of its subtree, ``((n + 1) << level) - 1``."""
    level, n = split_stored_hash_index(index)
    return ((n + 1) << level) - 1, level


def leaf_hash_count(leaf: int) -> int:
    """How many stored hashes appending ``leaf`` writes: its own, then one per subtree it
    completes (one per trailing 1-bit of ``leaf``)."""
    if leaf < 0:
        raise ValueError(f"leaf index must be >= 0, got {leaf}")
    return 1 + _trailing_zeros(leaf + 1)


def hashes_per_leaf(stored: Sequence[StoredHash]) -> list[bytes]:
    """Each leaf's stored hashes, concatenated, leaf by leaf: the ``hashes`` values of a
    batch's rows. ``stored`` is what appending whole leaves produced (ascending,
    contiguous indexes, as ``CompactRange.iter_append`` yields them), so each leaf's run
    is contiguous and starts with its level-0 hash."""
    if not stored:
        return []
    leaf, level = stored_hash_home(stored[0].idx)
    if level != 0:
        raise ValueError(f"stored hash {stored[0].idx} does not start a leaf's hashes")
    # One join, then a slice per leaf: a chunk of 2,000 events on the ingest path.
    joined = b"".join([value for _, value in stored])
    out: list[bytes] = []
    start, total = 0, len(joined)
    while start < total:
        end = start + HASH_SIZE * leaf_hash_count(leaf)
        if end > total:
            raise ValueError(f"the hashes of leaf {leaf} are cut short")
        out.append(joined[start:end])
        start = end
        leaf += 1
    return out


def leaves_holding(indexes: Iterable[int]) -> list[int]:
    """The leaves whose rows hold the stored hashes ``indexes``, ascending, each once:
    what a reader asks the store for."""
    return sorted({stored_hash_home(index)[0] for index in indexes})


def hashes_from_rows(indexes: Sequence[int], rows: Mapping[int, bytes]) -> list[bytes]:
    """The hashes ``indexes`` name, in that order, cut from their leaves' rows
    (``leaf_index -> hashes``). An index whose row is absent is left out and a row too
    short gives a short slice, so ``read_checked`` refuses the answer by name."""
    out: list[bytes] = []
    for index in indexes:
        leaf, level = stored_hash_home(index)
        row = rows.get(leaf)
        if row is not None:
            out.append(bytes(row[level * HASH_SIZE : (level + 1) * HASH_SIZE]))
    return out


def stored_hash_leaves(index: int) -> range:
    """The leaves under the node stored at ``index``: what a bad stored hash puts in doubt."""
    level, n = split_stored_hash_index(index)
    return range(n << level, (n + 1) << level)


def stored_hash_count(tree_size: int) -> int:
    """How many stored hashes a tree of ``tree_size`` leaves has: the store's next free
    index, which an adapter can check against its row count."""
    if tree_size == 0:
        return 0
    last = tree_size - 1
    return stored_hash_index(0, last) + 1 + _trailing_zeros(tree_size)


def append_indexes(n: int) -> list[int]:
    """The stored indexes to read before appending leaf ``n`` (ascending): the left
    siblings of the subtrees leaf ``n`` completes, one per trailing 1-bit of ``n``."""
    completed = _trailing_zeros(n + 1)
    return [stored_hash_index(level, (n >> level) - 1) for level in reversed(range(completed))]


def stored_hashes_for_append(n: int, leaf_hash: bytes, read_hashes: HashReader) -> list[StoredHash]:
    """The hashes to store when leaf ``n`` (0-based, so the tree grows from ``n`` to
    ``n + 1`` leaves) with hash ``leaf_hash`` is appended: tlog's
    ``StoredHashesForRecordHash``. At most ``1 + log2(n)`` hashes, two on average; reads
    at most ``log2(n)`` earlier ones in one call. For many leaves at once use
    ``ledger.compact.append_batch``, which reads once for the whole batch."""
    indexes = append_indexes(n)
    siblings = read_checked(read_hashes, indexes)
    first = stored_hash_index(0, n)
    stored = [StoredHash(first, leaf_hash)]
    current = leaf_hash
    for offset, sibling in enumerate(reversed(siblings), start=1):
        current = node_hash(sibling, current)
        stored.append(StoredHash(first + offset, current))
    return stored


def subtree_indexes(lo: int, hi: int, out: list[int]) -> None:
    """Append to ``out`` the stored indexes of the perfect subtrees that tile leaves
    ``[lo, hi)`` left to right, largest first. ``lo`` must be aligned to the first
    (largest) one, as every range a root or proof asks for is."""
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        out.append(stored_hash_index(level, lo >> level))
        lo += 1 << level


def fold_subtrees(hashes: Sequence[bytes], start: int, count: int) -> bytes:
    """The hash of a range from the hashes of the ``count`` perfect subtrees tiling it
    (``hashes[start:start + count]``, left to right): fold from the right, as RFC 9162's
    split puts the perfect part on the left."""
    end = start + count - 1
    current = hashes[end]
    for position in range(end - 1, start - 1, -1):
        current = node_hash(hashes[position], current)
    return current


def read_checked(read_hashes: HashReader, indexes: Sequence[int]) -> Sequence[bytes]:
    """Call the reader and refuse an answer that does not match the question, so a short
    read can never turn into a wrong root."""
    if not indexes:
        return ()
    hashes = read_hashes(indexes)
    if len(hashes) != len(indexes):
        raise StoredHashesMissing(f"asked the store for {len(indexes)} hashes, got {len(hashes)}")
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise StoredHashesMissing(
                f"stored hash {indexes[position]} is {len(value)} bytes, not {HASH_SIZE}"
            )
    return hashes


def _trailing_zeros(value: int) -> int:
    return (value & -value).bit_length() - 1
