"""Tree roots, inclusion proofs and consistency proofs from stored hashes (RFC 9162
§2.1.1, §2.1.3.1, §2.1.4.1), in two steps so that an async store needs one round trip:

1. ``plan_*`` is pure arithmetic: it names every stored hash the answer needs
   (``HashPlan.indexes``, O(log n) of them, at most ``2·log2(n) + 2``);
2. the caller reads those hashes in one query, and ``HashPlan.assemble`` turns them into
   the answer.

``tree_root``, ``inclusion_proof`` and ``consistency_proof`` do both steps with a
synchronous ``HashReader``.

Each proof element is the hash of a leaf range that RFC 9162's recursion names. A range
on the right edge of the tree may be incomplete, so it is not stored: its hash is folded
from the perfect subtrees that tile it, which is why a plan carries, per element, how many
consecutive hashes fold into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ctplhub.ledger.errors import InvalidTreeRange, StoredHashesMissing
from ctplhub.ledger.hashing import EMPTY_ROOT
from ctplhub.ledger.storage import HashReader, fold_subtrees, read_checked, subtree_indexes


@dataclass(frozen=True, slots=True)
class HashPlan:
    """The stored hashes an answer needs, and how to combine them.

    ``indexes`` is what to read (in this order; an adapter may fetch them in any order
    but must hand them back in this one). Element ``i`` of the answer is the fold of the
    next ``group_sizes[i]`` hashes.
    """

    indexes: tuple[int, ...]
    group_sizes: tuple[int, ...]

    def assemble(self, hashes: Sequence[bytes]) -> list[bytes]:
        """The answer's hashes from the stored hashes read for ``indexes``."""
        if len(hashes) != len(self.indexes):
            raise StoredHashesMissing(
                f"the plan needs {len(self.indexes)} stored hashes, got {len(hashes)}"
            )
        out: list[bytes] = []
        start = 0
        for size in self.group_sizes:
            out.append(hashes[start] if size == 1 else fold_subtrees(hashes, start, size))
            start += size
        return out


def _plan(ranges: Sequence[tuple[int, int]]) -> HashPlan:
    indexes: list[int] = []
    sizes: list[int] = []
    for lo, hi in ranges:
        width = hi - lo
        if width & (width - 1) == 0:
            # A perfect subtree, the common case: one stored hash, the one written with
            # its last leaf (``stored_hash_index`` inlined; plans are made per request).
            last = hi - 1
            indexes.append(2 * last - last.bit_count() + width.bit_length() - 1)
            sizes.append(1)
        else:
            before = len(indexes)
            subtree_indexes(lo, hi, indexes)
            sizes.append(len(indexes) - before)
    return HashPlan(tuple(indexes), tuple(sizes))


def inclusion_ranges(leaf_index: int, tree_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make the audit path PATH(m, D[n]), bottom-up: walk
    from the root towards the leaf and keep the side not taken."""
    if not 0 <= leaf_index < tree_size:
        raise InvalidTreeRange(
            f"leaf_index must be in [0, tree_size): {leaf_index} is not in [0, {tree_size})"
        )
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))  # RFC 9162's k
        if leaf_index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make PROOF(first, D[second]) = SUBPROOF(first,
    D[second], true), in the RFC's order. The walk follows the old tree's right edge;
    the range it ends on is sent only if it is not the whole old tree (the verifier holds
    that root already)."""
    if not 0 < first <= second:
        raise InvalidTreeRange(
            f"a consistency proof needs 0 < first <= second, got first={first}, second={second}"
        )
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, second
    whole_old_tree = True
    while first != hi:
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))  # RFC 9162's k
        if first <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def plan_tree_root(tree_size: int) -> HashPlan:
    """The perfect subtrees tiling ``[0, tree_size)`` (one per 1-bit of the size): the
    tree's compact range, folded into one root. Empty for the empty tree."""
    if tree_size < 0:
        raise InvalidTreeRange(f"tree_size must be >= 0, got {tree_size}")
    if tree_size == 0:
        return HashPlan((), ())
    return _plan([(0, tree_size)])


def plan_inclusion_proof(leaf_index: int, tree_size: int) -> HashPlan:
    """What the audit path of leaf ``leaf_index`` in the tree of ``tree_size`` needs."""
    return _plan(inclusion_ranges(leaf_index, tree_size))


def plan_consistency_proof(first: int, second: int) -> HashPlan:
    """What the consistency proof from ``first`` leaves to ``second`` needs."""
    return _plan(consistency_ranges(first, second))


def tree_root(tree_size: int, read_hashes: HashReader) -> bytes:
    """MTH of the first ``tree_size`` leaves, from at most ``1 + log2(n)`` stored hashes."""
    plan = plan_tree_root(tree_size)
    if not plan.indexes:
        return EMPTY_ROOT
    return plan.assemble(read_checked(read_hashes, plan.indexes))[0]


def inclusion_proof(leaf_index: int, tree_size: int, read_hashes: HashReader) -> list[bytes]:
    """The RFC 9162 audit path of one leaf, leaf-side first; one read."""
    plan = plan_inclusion_proof(leaf_index, tree_size)
    return plan.assemble(read_checked(read_hashes, plan.indexes))


def consistency_proof(first: int, second: int, read_hashes: HashReader) -> list[bytes]:
    """The RFC 9162 consistency proof between two tree sizes; one read. Empty when
    ``first == second``."""
    plan = plan_consistency_proof(first, second)
    return plan.assemble(read_checked(read_hashes, plan.indexes))
