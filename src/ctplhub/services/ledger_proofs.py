"""The ledger's public reads (DESIGN §6): the latest signed tree head, inclusion and
consistency proofs, entries by leaf range.

Every answer is checked against the latest *signed* tree head: a proof for a tree the
platform never vouched for, or an entry past it, would let a caller see (and quote) a
state nobody signed. Proofs are planned first (``ledger.proofs``: the O(log n) stored
hashes they need), read in one round trip, then assembled; the store answers the read
and the size check in one statement (``LedgerReader.hashes``).

Bad parameters are the caller's error (``400 validation_failed``, ``range_too_large``);
a store that lacks hashes inside a signed tree is the server's (``StoredHashesMissing``,
a 500 naming the request id).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ctplhub.domain.errors import ValidationFailed
from ctplhub.ledger import (
    EMPTY_ROOT,
    StoredHashesMissing,
    TreeHead,
    plan_consistency_proof,
    plan_inclusion_proof,
)
from ctplhub.services.ports import Clock

MAX_ENTRIES = 1_000
"""Leaves one ``entries`` call may ask for (DESIGN §3.1): more is ``range_too_large``."""

MAX_SIZE = 2**53 - 1
"""Sizes and indexes above this are refused: JSON numbers (and JCS) are exact up to it,
and stored indexes (about twice a size) stay far inside the databases' 64-bit integers."""


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A tree head and the platform's Ed25519 signature over its JCS (DESIGN §3.1): the
    key's ``kid`` and the 64 raw signature bytes."""

    head: TreeHead
    kid: str
    signature: bytes

    def published(self) -> dict[str, Any]:
        """The signed object as the platform publishes it (§3.1: ``signature`` holds the
        algorithm, the kid and the padded base64 value): on the wire, and what the
        auditor checks against the JWKS."""
        return {
            **self.head.to_signable(),
            "signature": {
                "alg": "Ed25519",
                "kid": self.kid,
                "value": base64.b64encode(self.signature).decode("ascii"),
            },
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    audit_path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    first: int
    second: int
    consistency_path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One leaf: the entry's JCS bytes as stored, and the leaf hash the tree holds for it
    (read from the stored hashes, not recomputed, so a reader can check the two agree)."""

    leaf_index: int
    entry: bytes
    leaf_hash: bytes


class LedgerReader(Protocol):
    """The ledger tables, read (``store/readers/ledger.py``)."""

    async def latest_tree_head(self) -> SignedTreeHead | None:
        """The signed tree head of the largest size; ``None`` before the first."""

    async def tree_head(self, tree_size: int) -> SignedTreeHead | None:
        """The signed tree head of exactly ``tree_size`` leaves, if one was signed."""

    async def hashes(self, indexes: Sequence[int], *, tree_size: int) -> list[bytes] | None:
        """The stored hashes at ``indexes``, in that order, in one round trip; ``None``
        when the latest signed tree head is smaller than ``tree_size`` (then nothing is
        read). A short answer raises ``StoredHashesMissing``."""

    async def entries(self, start: int, end: int) -> list[LedgerEntry]:
        """The leaves in ``[start, end)`` that the latest signed tree head covers, in
        order: fewer than asked (or none) past its size."""


SignTreeHead = Callable[[TreeHead], SignedTreeHead]
"""Signs a tree head with the active key by the rule of §3.1 (``security``): every
appending transaction's head, and the empty log's (never stored)."""


class TreeSizeTooLarge(ValidationFailed):
    """A tree size past the latest signed tree head: ``400 validation_failed``, with the
    current size in ``details`` so the caller can ask again for what exists."""

    def __init__(self, field: str, asked: int, current: int) -> None:
        super().__init__(
            f"{field} is {asked}, but the latest signed tree head has {current} leaves",
            details=[{"field": field, "problem": f"larger than the log ({current} leaves)"}],
        )
        self.current = current


class LedgerProofs:
    """The use cases behind ``/v1/ledger/*``; every method reads once or twice at most."""

    def __init__(self, reader: LedgerReader, sign: SignTreeHead, clock: Clock) -> None:
        self._reader = reader
        self._sign = sign
        self._clock = clock

    async def latest_tree_head(self) -> SignedTreeHead:
        """The latest signed tree head. Before the first event the log is empty, and the
        answer is the empty tree's head (size 0, root SHA-256 of nothing, as RFC 9162
        §2.1.1 defines it), signed now and never stored: a follower's first state."""
        found = await self._reader.latest_tree_head()
        if found is not None:
            return found
        now_ms = int(self._clock().timestamp() * 1000)
        return self._sign(TreeHead(0, EMPTY_ROOT, now_ms))

    async def inclusion(self, leaf_index: int, tree_size: int) -> InclusionProof:
        _check_bounds("leaf_index", leaf_index)
        _check_bounds("tree_size", tree_size)
        if not 0 <= leaf_index < tree_size:
            raise _invalid("leaf_index", f"must be less than tree_size ({tree_size})")
        plan = plan_inclusion_proof(leaf_index, tree_size)
        hashes = await self._read(plan.indexes, tree_size, "tree_size")
        return InclusionProof(leaf_index, tree_size, tuple(plan.assemble(hashes)))

    async def consistency(self, first: int, second: int) -> ConsistencyProof:
        _check_bounds("second", second)
        if first < 1:
            raise _invalid("first", "must be at least 1 (no proof runs from the empty tree)")
        if second < first:
            raise _invalid("second", f"must be at least first ({first})")
        plan = plan_consistency_proof(first, second)
        hashes = await self._read(plan.indexes, second, "second")
        return ConsistencyProof(first, second, tuple(plan.assemble(hashes)))

    async def entries(self, start: int, end: int) -> list[LedgerEntry]:
        _check_bounds("start", start)
        _check_bounds("end", end)
        if end <= start:
            raise _invalid("end", f"must be greater than start ({start}); end is exclusive")
        if end - start > MAX_ENTRIES:
            raise ValidationFailed(
                f"at most {MAX_ENTRIES} entries per call; asked for {end - start}",
                code="range_too_large",
                details=[{"field": "end", "problem": f"end - start over {MAX_ENTRIES}"}],
            )
        return await self._reader.entries(start, end)

    async def _read(self, indexes: Sequence[int], tree_size: int, field: str) -> list[bytes]:
        hashes = await self._reader.hashes(indexes, tree_size=tree_size)
        if hashes is None:
            head = await self._reader.latest_tree_head()
            current = head.head.tree_size if head is not None else 0
            if current < tree_size:
                raise TreeSizeTooLarge(field, tree_size, current)
            # The log grew between the two reads: the tree exists now, read again.
            hashes = await self._reader.hashes(indexes, tree_size=tree_size)
            if hashes is None:
                raise StoredHashesMissing("the signed tree head went backwards")
        return hashes


def _check_bounds(field: str, value: int) -> None:
    if not 0 <= value <= MAX_SIZE:
        raise _invalid(field, f"must be an integer from 0 to {MAX_SIZE}")


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"{field} {problem}", details=[{"field": field, "problem": problem}])
