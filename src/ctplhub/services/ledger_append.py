"""Appending accepted events to the ledger, in the events' own transaction (DESIGN §6).

A transaction appends all its events at once: entries are built and their salts sealed
before the lock (CPU work that needs no order), then, with the append lock held, one
read of the old tree's compact range, every stored hash of the batch computed in memory
(``ledger.append_batch``), one write of the leaves (each row carrying the stored hashes
its leaf wrote, ``ledger.hashes_per_leaf``), and one signed tree head for the new size.
So the ledger costs a chunk of 2,000 events one lock, one small read, one bulk write of
one row per event and one signature, and two transactions can never fork the log: the second
reads the size only after the first has committed.

The tree head a transaction signs is its receipts' tree head: it holds every leaf the
transaction appended, and it is the smallest stored head that does (the next
transaction's is larger), which is how a receipt is found again for an idempotent
repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.records import fast_init
from ctplhub.ledger import (
    HASH_SIZE,
    AppendedBatch,
    TreeHead,
    append_batch,
    hashes_per_leaf,
    inclusion_proof,
)
from ctplhub.services.ledger_entries import (
    BuiltEntry,
    Canonicaliser,
    EntryBuilder,
    salts_aad,
    salts_from_plain,
    salts_plain,
)
from ctplhub.services.ledger_ports import LeafRow, LedgerRepository
from ctplhub.services.ledger_proofs import SignedTreeHead, SignTreeHead
from ctplhub.services.ports import PersonalData


@fast_init
@dataclass(frozen=True, slots=True)
class LeafReceipt:
    """Where an event went in the log, what the tree holds for it, the salts that open
    its commitments, and the tree head its transaction signed."""

    leaf_index: int
    leaf_hash: bytes
    salts: dict[str, str]
    tree_head: SignedTreeHead


@fast_init
@dataclass(frozen=True, slots=True)
class LedgerReceipt:
    """A single event's full receipt: its leaf and the audit path to its tree head."""

    leaf: LeafReceipt
    inclusion_proof: tuple[bytes, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class AppendedLeaves:
    leaves: list[LeafReceipt]
    batch: AppendedBatch

    def receipt(self, position: int) -> LedgerReceipt:
        """The full receipt of the ``position``-th leaf appended (proofs from memory)."""
        proofs = self.batch.inclusion_proofs()
        return LedgerReceipt(self.leaves[position], tuple(proofs[position]))


class LedgerWriter:
    def __init__(
        self,
        personal: PersonalData,
        canonicalise: Canonicaliser,
        sign: SignTreeHead,
    ) -> None:
        self._personal = personal
        self._sign = sign
        self.entries = EntryBuilder(canonicalise)

    def append(
        self,
        ledger: LedgerRepository,
        built: Sequence[BuiltEntry],
        event_ids: Sequence[int],
        now: datetime,
    ) -> AppendedLeaves:
        """Append ``built[i]`` as the leaf of event ``event_ids[i]``, in that order."""
        encrypt = self._personal.encrypt
        sealed = [
            encrypt(salts_plain(entry.salts), aad=salts_aad(event_id))
            for entry, event_id in zip(built, event_ids, strict=True)
        ]
        size = ledger.lock_for_append()
        batch = append_batch(size, [entry.leaf_hash for entry in built], ledger.read_hashes)
        head = self._sign(TreeHead(batch.new_size, batch.root, _millis(now)))
        hashes = hashes_per_leaf(batch.stored)
        rows = [
            LeafRow(size + i, event_id, entry.entry, blob, stored)
            for i, (entry, event_id, blob, stored) in enumerate(
                zip(built, event_ids, sealed, hashes, strict=True)
            )
        ]
        ledger.append(rows, head)
        leaves = [
            LeafReceipt(size + i, entry.leaf_hash, entry.salts, head)
            for i, entry in enumerate(built)
        ]
        return AppendedLeaves(leaves, batch)

    def receipt_of(self, ledger: LedgerRepository, event_id: int) -> LedgerReceipt | None:
        """The receipt an event got when it was appended, rebuilt from the store (for an
        idempotent repeat); ``None`` when the event has no leaf."""
        row = ledger.leaf_of_event(event_id)
        if row is None:
            return None
        head = ledger.head_covering(row.leaf_index)
        if head is None:
            return None
        salts = salts_from_plain(self._personal.decrypt(row.salts_enc, aad=salts_aad(event_id)))
        path = inclusion_proof(row.leaf_index, head.head.tree_size, ledger.read_hashes)
        leaf = LeafReceipt(row.leaf_index, row.hashes[:HASH_SIZE], salts, head)
        return LedgerReceipt(leaf, tuple(path))


def _millis(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)
