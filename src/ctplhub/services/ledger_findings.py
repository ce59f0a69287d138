"""Pure comparisons of the ledger audit (``ctplhub ledger audit``, DESIGN §6): what a
finding is, how the leaves recomputed from the events line up with the leaf hashes the
store holds, and how the stored subtree hashes are checked against their leaves.

Everything here runs over streams in order with O(log n) memory (a one-leaf lookahead
and the tree's compact range), so an audit of millions of leaves keeps no list of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ctplhub.ledger import HASH_SIZE, leaf_hash_count, node_hash, stored_hash_index


class FindingKind(StrEnum):
    ALTERED = "altered"  # a leaf, event, entry, stored hash or tree head changed
    INSERTED = "inserted"  # a leaf no appending transaction wrote
    REMOVED = "removed"  # a leaf (or an event's leaf) that is gone
    INCONSISTENT = "inconsistent"  # the log does not extend a tree head given to compare


class Subject(StrEnum):
    EVENT = "event"  # the stored event no longer gives the entry it was logged with
    ENTRY = "entry"  # the stored entry bytes are not the ones the tree holds
    LEAF = "leaf"  # a whole leaf (inserted or removed)
    STORED_HASH = "stored_hash"  # a stored hash (of a leaf row's ``hashes``)
    TREE_HEAD = "tree_head"  # a stored signed tree head
    SINCE = "since"  # the tree head given with --since


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the audit found, named as exactly as the evidence allows."""

    kind: FindingKind
    subject: Subject
    detail: str
    leaf_index: int | None = None
    event_id: int | None = None
    stored_index: int | None = None
    tree_size: int | None = None


@dataclass(frozen=True, slots=True)
class LeafMismatch:
    """Where the recomputed leaf sequence and the stored leaf hashes part.

    ``position`` counts stored leaf hashes; ``leaf_index``/``event_id`` name the leaf row
    involved (``None`` for a stored hash that no leaf row accounts for)."""

    kind: FindingKind
    position: int
    leaf_index: int | None
    event_id: int | None


RecomputedLeaf = tuple[bytes, int, int]
"""(leaf hash recomputed from the event, leaf_index, event_id), in ``leaf_index`` order."""

_END = object()


def align_leaves(
    recomputed: Iterable[RecomputedLeaf], stored: Iterable[bytes | None]
) -> Iterator[LeafMismatch]:
    """Walk both sequences and yield every place they differ, resynchronising after an
    inserted or removed leaf so that one deletion is one finding, not a finding for every
    leaf after it. Leaf hashes are salted, so a one-leaf lookahead is enough to tell an
    insertion (the recomputed side matches one further on) from a removal (the stored
    side does) from an alteration (neither). A stored ``None`` is a leaf whose row is
    gone (``StoredHashCheck``): removed, with no need to look further."""
    want: deque[RecomputedLeaf] = deque()
    have: deque[bytes | None] = deque()
    want_iter, have_iter = iter(recomputed), iter(stored)

    def fill(n: int) -> None:
        while len(want) < n and (item := next(want_iter, _END)) is not _END:
            want.append(item)  # type: ignore[arg-type]
        while len(have) < n and (value := next(have_iter, _END)) is not _END:
            have.append(value)  # type: ignore[arg-type]

    position = 0
    while True:
        fill(1)
        if not want and not have:
            return
        if not have:
            _, leaf, event = want.popleft()
            yield LeafMismatch(FindingKind.INSERTED, position, leaf, event)
            continue
        if not want or have[0] is None:
            have.popleft()
            yield LeafMismatch(FindingKind.REMOVED, position, None, None)
            position += 1
            continue
        if want[0][0] == have[0]:
            want.popleft()
            have.popleft()
            position += 1
            continue
        fill(2)
        inserted = len(want) > 1 and want[1][0] == have[0]
        removed = len(have) > 1 and have[1] == want[0][0]
        if inserted and not removed:
            _, leaf, event = want.popleft()
            yield LeafMismatch(FindingKind.INSERTED, position, leaf, event)
        elif removed and not inserted:
            have.popleft()
            yield LeafMismatch(FindingKind.REMOVED, position, None, None)
            position += 1
        else:
            _, leaf, event = want.popleft()
            have.popleft()
            yield LeafMismatch(FindingKind.ALTERED, position, leaf, event)
            position += 1


_LOOKAHEAD = 8  # rows whose hash counts are weighed before a renumbering is believed
_EVIDENCE = 4  # fewer rows than this never show one (near the end: wrong hashes instead)
_MAX_SHIFT = 8  # leaves a renumbering may skip at once


class StoredHashCheck:
    """Checks the stored hashes leaf row by leaf row (``leaf_index`` order): leaf ``m``'s
    ``hashes`` must be its leaf hash, then the hash of every subtree ``m`` completes, each
    the hash of its children as ``CompactRange.iter_append`` recomputes them from the leaf
    hashes. Hands the leaf hashes on (``leaf_hashes``) for ``align_leaves``, and collects
    the stored indexes of the hashes that differ (``bad``) or are not there (``missing``),
    and the leaves whose ``hashes`` hold more than that leaf wrote (``overlong``).

    A row's leaf is its ``leaf_index``, unless rows are missing: a gap in the indexes is
    a removed leaf (``None`` goes to the alignment, which names it), and rows whose hash
    counts fit only the positions one or more leaves further on were renumbered after a
    removal (``leaf_hash_count`` is fixed by the position, and differs between any two
    neighbours, so closing a one-leaf gap always shows at its first row). Either way the
    nodes over the gap cannot be recomputed, so the stored ones are taken as they are and
    the check goes on from them."""

    def __init__(self) -> None:
        self._edge: list[bytes | None] = []  # the compact range; None: over a gap
        self._size = 0  # leaves (and gaps) taken so far
        self._shift = 0  # position - leaf_index, grown by each renumbering found
        self.bad: list[int] = []
        self.missing: list[int] = []
        self.overlong: list[int] = []  # leaves whose hashes run past what they wrote
        self.hashes = 0  # stored hashes read

    def leaf_hashes(self, rows: Iterable[tuple[int, bytes]]) -> Iterator[bytes | None]:
        """``rows``: ``(leaf_index, hashes)`` in ``leaf_index`` order."""
        pending: deque[tuple[int, bytes]] = deque()
        source = iter(rows)
        while True:
            while len(pending) < _LOOKAHEAD and (row := next(source, None)) is not None:
                pending.append(row)
            if not pending:
                return
            leaf_index, hashes = pending[0]
            if not _fits(hashes, leaf_index + self._shift):
                self._shift += _renumbered(pending, self._shift)
            while self._size < leaf_index + self._shift:
                self._take(None, b"")
                yield None
            pending.popleft()
            self.hashes += len(hashes) // HASH_SIZE
            value = hashes[:HASH_SIZE]
            self._take(value, hashes)
            yield value

    def _take(self, value: bytes | None, hashes: bytes) -> None:
        """Append leaf ``self._size`` (``None``: its row is gone) and check the hashes its
        row holds above level 0."""
        position = self._size
        first = stored_hash_index(0, position)
        levels = leaf_hash_count(position)
        current = value
        for level in range(1, levels):
            left = self._edge.pop()
            stored = hashes[level * HASH_SIZE : (level + 1) * HASH_SIZE]
            if left is None or current is None:  # over a gap: only the store knows it
                current = stored if len(stored) == HASH_SIZE else None
                continue
            computed = node_hash(left, current)
            if not stored:
                self.missing.append(first + level)
            elif stored != computed:
                self.bad.append(first + level)
            current = computed
        self._edge.append(current)
        self._size += 1
        if len(hashes) > levels * HASH_SIZE:  # bytes with no stored index of this leaf's
            self.overlong.append(position)


def _fits(hashes: bytes, position: int) -> bool:
    return len(hashes) == leaf_hash_count(position) * HASH_SIZE


def _renumbered(pending: Sequence[tuple[int, bytes]], shift: int) -> int:
    """How many leaves were removed before ``pending[0]`` if the rows from there on were
    renumbered to close the gap: the smallest extra shift under which every pending row's
    hash count fits its position (``_EVIDENCE`` rows at least: fewer fit some shift by
    chance); 0 if none does, and the row's hashes are simply wrong."""
    if len(pending) < _EVIDENCE:
        return 0
    for extra in range(1, _MAX_SHIFT + 1):
        if all(_fits(hashes, leaf + shift + extra) for leaf, hashes in pending):
            return extra
    return 0


def entry_differences(rebuilt: dict[str, object], stored: dict[str, object]) -> list[str]:
    """The fields in which two entries differ, sorted (a field in one only counts)."""
    names = set(rebuilt) | set(stored)
    return sorted(name for name in names if rebuilt.get(name) != stored.get(name))
