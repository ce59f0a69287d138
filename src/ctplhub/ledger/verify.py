"""Checking proofs: RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency), step by
step as the RFC writes them, so a reader can hold the code against the text.

Shared by the server's own self-checks, the auditor and any client: it needs nothing but
hashes and sizes. Every failure raises ``ProofRejected`` with the reason; nothing here
returns a half-answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctplhub.ledger.errors import ProofRejected
from ctplhub.ledger.hashing import HASH_SIZE, node_hash


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofRejected(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, audit_path: Sequence[bytes]
) -> bytes:
    """The root that ``audit_path`` implies for leaf ``leaf_index`` of a tree of
    ``tree_size`` leaves (RFC 9162 §2.1.3.2 steps 1-4, and the ``sn == 0`` half of
    step 5). Raises ``ProofRejected`` when the path cannot belong to that position."""
    if not 0 <= leaf_index < tree_size:
        raise ProofRejected(f"leaf_index {leaf_index} is not in a tree of size {tree_size}")
    _check_hash(leaf_hash, "the leaf hash")
    fn, sn = leaf_index, tree_size - 1
    r = leaf_hash
    for position, p in enumerate(audit_path):
        _check_hash(p, f"audit path element {position}")
        if sn == 0:
            raise ProofRejected("the audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # A right-edge node with no right sibling at these levels: climb them.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofRejected("the audit path is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_index: int,
    tree_size: int,
    leaf_hash: bytes,
    audit_path: Sequence[bytes],
    root_hash: bytes,
) -> None:
    """Accept the proof that the leaf is at ``leaf_index`` in the tree with ``root_hash``,
    or raise ``ProofRejected``."""
    _check_hash(root_hash, "the root hash")
    if root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, audit_path) != root_hash:
        raise ProofRejected("the audit path leads to another root")


def verify_consistency(
    first: int,
    second: int,
    first_hash: bytes,
    second_hash: bytes,
    consistency_path: Sequence[bytes],
) -> None:
    """Accept the proof that the tree of ``second`` leaves with ``second_hash`` extends the
    tree of ``first`` leaves with ``first_hash``, or raise ``ProofRejected``.

    Equal sizes need an empty proof and equal roots (the RFC leaves that case to the
    caller); a proof from the empty tree would prove nothing and is refused.
    """
    _check_hash(first_hash, "the first root hash")
    _check_hash(second_hash, "the second root hash")
    for position, c in enumerate(consistency_path):
        _check_hash(c, f"consistency path element {position}")
    if not 0 < first <= second:
        raise ProofRejected(f"no consistency proof runs from size {first} to size {second}")
    if first == second:
        if consistency_path:
            raise ProofRejected("equal tree sizes take an empty consistency path")
        if first_hash != second_hash:
            raise ProofRejected("equal tree sizes with different root hashes")
        return
    # 1. An empty path proves nothing between different sizes.
    if not consistency_path:
        raise ProofRejected("the consistency path is empty")
    path = list(consistency_path)
    # 2. When the old tree is a perfect subtree, the verifier's own root starts the path.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3.-4. Position on the old tree's last leaf; skip the levels where it is a right
    # child, whose left siblings the old root already covers.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Both reconstructions start from the first element.
    fr = sr = path[0]
    # 6. Left siblings feed both roots; right siblings only the new one.
    for c in path[1:]:
        if sn == 0:
            raise ProofRejected("the consistency path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7. Both roots must come out, and the path must have reached the top.
    if sn != 0:
        raise ProofRejected("the consistency path is shorter than the tree is deep")
    if fr != first_hash:
        raise ProofRejected("the consistency path does not lead to the first root")
    if sr != second_hash:
        raise ProofRejected("the consistency path does not lead to the second root")
