"""RFC 9162 §2.1.1 hashing: the two domain-separated hashes every other ledger module
builds on.

The 0x00 / 0x01 prefixes keep a leaf from ever being mistaken for an interior node (a
second-preimage attack on the tree). Hashes are raw 32-byte ``bytes`` inside the ledger;
they become lowercase hex only at the edges (DESIGN §3.1), in the presenters.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

HASH_SIZE = 32

EMPTY_ROOT = sha256(b"").digest()
"""The Merkle tree hash of the empty tree (RFC 9162 §2.1.1: the hash of an empty string)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry (its JCS bytes)."""
    return sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two strictly smaller than ``n``
    (``n`` >= 2), where the tree of ``n`` leaves splits into a perfect left part and the
    rest."""
    return 1 << ((n - 1).bit_length() - 1)


def tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) by the RFC's own recursion over already-hashed leaves.

    Linear time and memory: for small trees, tests and tools. The stored-hash path
    (``ledger.storage``) and the streaming path (``ledger.compact``) are the fast ones.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = largest_power_of_two_below(n)
    return node_hash(tree_hash(leaf_hashes[:k]), tree_hash(leaf_hashes[k:]))
