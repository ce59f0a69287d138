"""RFC 6962 §2.1 written out as the RFC writes it, the yardstick for the ledger.

Deliberately naive and independent of ``ctplhub.ledger``: its own hashing, slicing of
the input list, recursion with no stored hashes. Quadratic-ish and only for small trees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw entries."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:n])).digest()


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), the audit path of leaf m."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:n])]
    return [*path(m - k, d[k:n]), mth(d[:k])]


def proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return subproof(m, d, True)


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:n])]
    return [*subproof(m - k, d[k:n], False), mth(d[:k])]
