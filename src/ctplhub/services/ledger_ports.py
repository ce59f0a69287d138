"""The ports of the ledger's write path and of its audit (DESIGN §6); ``store`` implements
them, ``bootstrap`` injects the signer and the canonicaliser from ``security``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from ctplhub.services.ledger_proofs import SignedTreeHead

VerifySigned = Callable[[dict[str, Any]], bool]
"""Checks a signed object against the published keys (the JWKS), for the auditor."""


class LeafRow(NamedTuple):
    """A row of ``ledger_leaves`` (a tuple: it goes to COPY as it is, in column order).
    ``hashes``: the stored hashes appending this leaf wrote, concatenated
    (``ledger.hashes_per_leaf``)."""

    leaf_index: int
    event_id: int
    entry: bytes
    salts_enc: bytes
    hashes: bytes


class LedgerRepository(Protocol):
    """The ledger tables inside a unit of work's transaction."""

    def lock_for_append(self) -> int:
        """Serialise appenders (every process, every engine) until the transaction ends,
        then return the tree size: read only once the lock is held, so two transactions
        can never append at the same index."""
        ...

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Stored hashes by index, in the order asked (``ledger.HashReader``)."""
        ...

    def append(self, leaves: Sequence[LeafRow], head: SignedTreeHead) -> None:
        """Write the leaves (one row each, their stored hashes in it) and the tree head."""
        ...

    def leaf_of_event(self, event_id: int) -> LeafRow | None: ...

    def head_covering(self, leaf_index: int) -> SignedTreeHead | None:
        """The smallest signed tree head that holds ``leaf_index``: the one signed by the
        transaction that appended it."""
        ...


# --- The audit's view of the store: streams in order, plain tuples. ---------------------


class AuditedLeaf(NamedTuple):
    """A leaf joined with its event (the event's fields ``None`` when it has none): the
    event in ``PolicyEvent.canonical()`` order, personal fields still sealed."""

    leaf_index: int
    event_id: int
    entry: bytes
    salts_enc: bytes
    event: StoredEventFields | None


class StoredEventFields(NamedTuple):
    """What a stored event row holds of the fields an entry commits to or shows."""

    insurer_code: str
    policy_no: str
    event_type: str
    version: int
    occurred_at: datetime
    plate: str
    vin: str
    vehicle_type: str
    use_nature: str
    owner_name_enc: bytes
    owner_id_type: str
    owner_id_enc: bytes
    owner_phone_enc: bytes | None
    coverage_start: datetime
    coverage_end: datetime
    premium: Decimal
    region_code: str
    prior_policy_no: str | None
    effective_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventToBackfill:
    event_id: int
    fields: StoredEventFields


class LedgerAuditSource(Protocol):
    """Everything the auditor reads, each as one ordered stream (``store``)."""

    def counts(self) -> tuple[int, int, int]:
        """(events, leaves, stored hashes): for the progress bar and the size checks."""
        ...

    def leaf_index_bound(self) -> int:
        """One past the largest stored leaf index (0 for no leaf)."""
        ...

    def leaves(self, start: int, end: int) -> Iterator[AuditedLeaf]:
        """The leaves with ``start <= leaf_index < end`` in order, joined with their event."""
        ...

    def hashes(self, end: int) -> Iterator[tuple[int, bytes]]:
        """``(leaf_index, hashes)`` of every leaf below ``end``, in ``leaf_index`` order:
        the stored hashes, row by row."""
        ...

    def events_without_leaf(self) -> Iterator[int]:
        """Ids of events no leaf names, ascending."""
        ...

    def tree_heads(self) -> list[SignedTreeHead]:
        """Every stored signed tree head, by size."""
        ...

    def latest_tree_head(self) -> SignedTreeHead | None: ...


class LedgerBackfillSource(Protocol):
    def events_without_leaf_after(self, after_id: int, limit: int) -> list[EventToBackfill]:
        """Events with id > ``after_id`` that no leaf names, by id, at most ``limit``."""
        ...

    def missing_count(self) -> int:
        """How many events no leaf names (quick when none)."""
        ...
