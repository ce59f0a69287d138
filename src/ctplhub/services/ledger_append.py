"""Appending accepted events to the ledger, in the events' own transaction (DESIGN §6).

A transaction appends all its events at once: entries are built and their salts sealed
before the lock (CPU work that needs no order), then, with the append lock held, one
read of the old tree's compact range, every stored hash of the batch computed in memory
(``ledger.append_rows``), one write of the leaves (each row carrying the stored hashes
its leaf wrote), and one signed tree head for the new size.
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
from itertools import repeat

from ctplhub.domain.records import fast_init
from ctplhub.ledger import (
    HASH_SIZE,
    AppendedRows,
    TreeHead,
    append_rows,
    inclusion_proof,
)
from ctplhub.services.ledger_entries import (
    BuiltEntries,
    Canonicaliser,
    EntryBuilder,
    salts_aad,
    salts_from_plain,
)
from ctplhub.services.ledger_ports import LeafRow, LedgerRepository
from ctplhub.services.ledger_proofs import SignedTreeHead, SignTreeHead
from ctplhub.services.ports import PersonalData


@fast_init
@dataclass(frozen=True, slots=True)
class LeafReceipt:
    """Where an event went in the log, what the tree holds for it, the salts that open
    its commitments (kept in their sealed form's plain text, ``ledger_entries``; ``salts``
    is the field -> hex mapping the receipt shows), and the tree head its transaction
    signed."""

    leaf_index: int
    leaf_hash: bytes
    salts_plain: str
    tree_head: SignedTreeHead

    @property
    def salts(self) -> dict[str, str]:
        return salts_from_plain(self.salts_plain)


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
    rows: AppendedRows

    def receipt(self, position: int) -> LedgerReceipt:
        """The full receipt of the ``position``-th leaf appended (proofs from memory)."""
        proofs = self.rows.batch().inclusion_proofs()
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
        built: BuiltEntries,
        event_ids: Sequence[int],
        now: datetime,
    ) -> AppendedLeaves:
        """Append ``built``'s i-th entry as the leaf of event ``event_ids[i]``, in order."""
        plains = built.salts_plain
        sealed = self._personal.encrypt_many(
            plains, [salts_aad(event_id) for event_id in event_ids]
        )
        size = ledger.lock_for_append()
        leaf_hashes = built.leaf_hashes
        appended = append_rows(size, leaf_hashes, ledger.read_hashes)
        head = self._sign(TreeHead(appended.new_size, appended.root, _millis(now)))
        ledger.append(
            list(
                map(
                    LeafRow,
                    range(size, appended.new_size),
                    event_ids,
                    built.entries,
                    sealed,
                    appended.rows,
                )
            ),
            head,
        )
        leaves = list(
            map(LeafReceipt, range(size, appended.new_size), leaf_hashes, plains, repeat(head))
        )
        return AppendedLeaves(leaves, appended)

    def receipt_of(self, ledger: LedgerRepository, event_id: int) -> LedgerReceipt | None:
        """The receipt an event got when it was appended, rebuilt from the store (for an
        idempotent repeat); ``None`` when the event has no leaf."""
        row = ledger.leaf_of_event(event_id)
        if row is None:
            return None
        head = ledger.head_covering(row.leaf_index)
        if head is None:
            return None
        plain = self._personal.decrypt(row.salts_enc, aad=salts_aad(event_id))
        salts_from_plain(plain)  # refuses a plain text of the wrong shape here, not later
        path = inclusion_proof(row.leaf_index, head.head.tree_size, ledger.read_hashes)
        leaf = LeafReceipt(row.leaf_index, row.hashes[:HASH_SIZE], plain, head)
        return LedgerReceipt(leaf, tuple(path))


def _millis(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)
