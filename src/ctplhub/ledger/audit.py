"""Pure pieces of the ledger audit (DESIGN §6, ``ctplhub ledger audit``): recompute from
the events, compare with what is stored, and name the first place they part.

The auditor streams both sides in leaf (or stored-index) order, so memory stays
O(log n) however long the log: ``streaming_root`` and ``CompactRange.iter_append`` in
``ledger.compact`` recompute, ``find_divergence`` compares. A divergence in the stored
hashes is located by ``storage.stored_hash_leaves`` (the leaves under it) and
``storage.stored_hash_home`` (the leaf whose row keeps it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import zip_longest

from ctplhub.ledger.compact import streaming_root

__all__ = ["Divergence", "DivergenceKind", "find_divergence", "streaming_root"]


class DivergenceKind(StrEnum):
    """How the stored sequence departs from the recomputed one at the first difference."""

    ALTERED = "altered"  # a stored hash replaced by another
    INSERTED = "inserted"  # a stored hash that no event accounts for
    REMOVED = "removed"  # an event's hash that the store lacks


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first position where stored and recomputed hashes differ, what each side holds
    there (``None`` past the end of one side), and the likely kind of tampering."""

    index: int
    kind: DivergenceKind
    expected: bytes | None
    stored: bytes | None


def find_divergence(expected: Iterable[bytes], stored: Iterable[bytes]) -> Divergence | None:
    """Compare two streams of hashes (recomputed, stored) and name the first difference,
    or ``None`` when they are equal to the end of both.

    The kind looks one element ahead on each side: a stored sequence that matches again
    after skipping its own element was ``INSERTED`` into, one that matches after skipping
    the expected element had it ``REMOVED``; anything else is ``ALTERED``. Leaf hashes are
    salted, so equal neighbours do not occur in practice and one step is enough.
    """
    want_iter = iter(expected)
    have_iter = iter(stored)
    index = 0
    for want, have in zip_longest(want_iter, have_iter):
        if want == have:
            index += 1
            continue
        if have is None:
            return Divergence(index, DivergenceKind.REMOVED, want, None)
        if want is None:
            return Divergence(index, DivergenceKind.INSERTED, None, have)
        next_want = next(want_iter, None)
        next_have = next(have_iter, None)
        inserted = next_have == want
        removed = next_want == have
        if inserted and not removed:
            kind = DivergenceKind.INSERTED
        elif removed and not inserted:
            kind = DivergenceKind.REMOVED
        else:
            kind = DivergenceKind.ALTERED
        return Divergence(index, kind, want, have)
    return None
