"""Pure comparisons of the ledger audit (``ctplhub ledger audit``, DESIGN §6): what a
finding is, how the leaves recomputed from the events line up with the leaf hashes the
store holds, and how the stored subtree hashes are checked against their leaves.

Everything here runs over streams in order with O(log n) memory (a one-leaf lookahead
and the tree's compact range), so an audit of millions of leaves keeps no list of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from ctplhub.ledger import CompactRange, split_stored_hash_index, stored_hash_index


class FindingKind(StrEnum):
    ALTERED = "altered"  # a leaf, event, entry, stored hash or tree head changed
    INSERTED = "inserted"  # a leaf no appending transaction wrote
    REMOVED = "removed"  # a leaf (or an event's leaf) that is gone
    INCONSISTENT = "inconsistent"  # the log does not extend a tree head given to compare


class Subject(StrEnum):
    EVENT = "event"  # the stored event no longer gives the entry it was logged with
    ENTRY = "entry"  # the stored entry bytes are not the ones the tree holds
    LEAF = "leaf"  # a whole leaf (inserted or removed)
    STORED_HASH = "stored_hash"  # a hash of ``ledger_hashes``
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
    recomputed: Iterable[RecomputedLeaf], stored: Iterable[bytes]
) -> Iterator[LeafMismatch]:
    """Walk both sequences and yield every place they differ, resynchronising after an
    inserted or removed leaf so that one deletion is one finding, not a finding for every
    leaf after it. Leaf hashes are salted, so a one-leaf lookahead is enough to tell an
    insertion (the recomputed side matches one further on) from a removal (the stored
    side does) from an alteration (neither)."""
    want: deque[RecomputedLeaf] = deque()
    have: deque[bytes] = deque()
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
        if not want:
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


class StoredHashCheck:
    """Checks ``ledger_hashes`` row by row (index order) against the leaf hashes it holds:
    every interior node must be the hash of its children, as ``CompactRange.iter_append``
    recomputes it. Hands the leaf-level hashes on (``leaf_hashes``) for ``align_leaves``,
    and collects the interior nodes that differ or are missing as ``bad`` indexes."""

    def __init__(self) -> None:
        self._edge = CompactRange()
        self._expected: dict[int, bytes] = {}
        self._next_leaf_index = 0  # the stored index the next leaf hash should have
        self.bad: list[int] = []
        self.missing: list[int] = []
        self.rows = 0

    def leaf_hashes(self, rows: Iterable[tuple[int, bytes]]) -> Iterator[bytes]:
        for idx, value in rows:
            self.rows += 1
            if idx != self._next_leaf_index:
                expected = self._expected.pop(idx, None)
                if expected is not None:
                    if expected != value:
                        self.bad.append(idx)
                    continue
                level, _ = split_stored_hash_index(idx)
                if level > 0:
                    self.bad.append(idx)  # a node whose leaves are not all stored
                    continue
                self.missing.append(self._next_leaf_index)  # a leaf hash never written
                self.missing.extend(sorted(self._expected))  # and nodes never written
                self._expected.clear()
            for stored in self._edge.iter_append((value,)):
                if stored.idx != idx:
                    self._expected[stored.idx] = stored.hash
            leaves = self._edge.size
            self._next_leaf_index = stored_hash_index(0, leaves)
            yield value
        self.missing.extend(sorted(self._expected))
        self._expected.clear()


def entry_differences(rebuilt: dict[str, object], stored: dict[str, object]) -> list[str]:
    """The fields in which two entries differ, sorted (a field in one only counts)."""
    names = set(rebuilt) | set(stored)
    return sorted(name for name in names if rebuilt.get(name) != stored.get(name))
