"""Use case: an insurer reports policy events, one or a batch (DESIGN §2.4, §3).

Events are handled in chunks: one read of what is already stored, the version rules of
``domain.policy.decide`` applied line by line (so a batch that carries several versions
of one policy behaves as if they arrived one after another), then one write and one
commit per chunk. A rejected line is never written; an accepted line is written whole
with its head update and its ledger leaf (DESIGN §6, ``services/ledger_append.py``) in
the same transaction; a chunk that loses a race with another writer is re-read and
decided again, so nothing is lost or stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ctplhub.domain.errors import DomainError, InsurerMismatch
from ctplhub.domain.policy import (
    Outcome,
    PolicyEvent,
    PolicyHead,
    content_hash_of,
    decide,
    parse_event,
)
from ctplhub.services.ledger_append import (
    AppendedLeaves,
    LeafReceipt,
    LedgerReceipt,
    LedgerWriter,
)
from ctplhub.services.ports import (
    Clock,
    EventKey,
    HeadRow,
    NewEventRow,
    PersonalData,
    PlannerStatistics,
    PolicyKey,
    ReadFence,
    RetryableConflict,
    StoredEventRef,
    UnitOfWorkFactory,
    chunked,
)

CHUNK_SIZE = 2_000
_RETRIES = 3

RawLine = tuple[int, Mapping[str, Any] | DomainError]
"""A line number and either the decoded object or why it could not be decoded."""


class LineStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # an identical re-send: nothing changed
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to an accepted event, repeated word for word for an identical re-send."""

    event_id: int
    insurer_code: str
    policy_no: str
    version: int
    content_hash: str
    received_at: datetime
    ledger: LedgerReceipt | None = None  # None only for an event stored before the ledger


@dataclass(frozen=True, slots=True)
class LineResult:
    line: int
    status: LineStatus
    error: DomainError | None = None
    event: PolicyEvent | None = None
    stored_as: StoredEventRef | None = None
    leaf: LeafReceipt | None = None  # an accepted line's place in the ledger

    @property
    def receipt(self) -> Receipt | None:
        """Built on demand: a batch of 100,000 lines never needs them."""
        if self.event is None or self.stored_as is None:
            return None
        return Receipt(
            self.stored_as.event_id,
            self.event.insurer_code,
            self.event.policy_no,
            self.event.version,
            self.stored_as.content_hash,
            self.stored_as.received_at,
        )


def personal_aad(event_key: EventKey, field: str) -> bytes:
    """Binds each ciphertext to its event and field, so blobs cannot be swapped."""
    insurer_code, policy_no, version = event_key
    return f"{insurer_code}|{policy_no}|{version}|{field}".encode()


class ReportEvents:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        personal: PersonalData,
        clock: Clock,
        statistics: PlannerStatistics,
        ledger: LedgerWriter,
        fence: ReadFence | None = None,
    ) -> None:
        self._uow = uow
        self._personal = personal
        self._clock = clock
        self._statistics = statistics
        self._ledger = ledger
        self._fence = fence  # a deployment with a replica: reads after this write see it

    def report(self, raw: Mapping[str, Any], *, insurer_code: str) -> tuple[bool, Receipt]:
        """One event: ``(created, receipt)``; a rejection raises its domain error. The
        receipt carries the ledger receipt, the same one again for an identical repeat."""
        (result,), appended = self._chunk([(1, raw)], insurer_code=insurer_code, fill_insurer=False)
        if result.error is not None:
            raise result.error
        receipt = result.receipt
        assert receipt is not None
        created = result.status is LineStatus.ACCEPTED
        ledger: LedgerReceipt | None
        if created and appended is not None:
            ledger = appended.receipt(0)
        else:
            with self._uow() as uow:
                ledger = self._ledger.receipt_of(uow.ledger, receipt.event_id)
        return created, replace(receipt, ledger=ledger)

    def report_many(
        self, lines: Iterable[RawLine], *, insurer_code: str, fill_insurer: bool = False
    ) -> Iterator[LineResult]:
        """Stream results in line order; memory is bounded by one chunk."""
        for chunk in chunked(lines, CHUNK_SIZE):
            yield from self._chunk(chunk, insurer_code=insurer_code, fill_insurer=fill_insurer)[0]

    def refresh_statistics(self, accepted: int) -> list[str]:
        """After a bulk load (an import, a large batch) of ``accepted`` events: refresh the
        planner statistics it made stale, so queries keep to their indexes right away."""
        return self._statistics.refresh(accepted)

    def _chunk(
        self, lines: list[RawLine], *, insurer_code: str, fill_insurer: bool
    ) -> tuple[list[LineResult], AppendedLeaves | None]:
        parsed: list[tuple[int, PolicyEvent | DomainError]] = []
        for line_no, raw in lines:
            parsed.append((line_no, self._parse(raw, insurer_code, fill_insurer)))
        for attempt in range(_RETRIES):
            try:
                return self._store(parsed, insurer_code)
            except RetryableConflict:
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _parse(
        raw: Mapping[str, Any] | DomainError, insurer_code: str, fill_insurer: bool
    ) -> PolicyEvent | DomainError:
        if isinstance(raw, DomainError):
            return raw
        try:
            event = parse_event(raw, insurer_code=insurer_code if fill_insurer else None)
        except DomainError as error:
            return error
        if event.insurer_code != insurer_code:
            return InsurerMismatch(
                f"this key belongs to insurer {insurer_code}; it cannot report events "
                f"of {event.insurer_code}"
            )
        return event

    def _store(
        self, parsed: list[tuple[int, PolicyEvent | DomainError]], insurer_code: str
    ) -> tuple[list[LineResult], AppendedLeaves | None]:
        now = self._clock()
        events = [item for _, item in parsed if isinstance(item, PolicyEvent)]
        # Per line: (line, status, error or event); refs resolved after the commit.
        outcomes: list[tuple[int, LineStatus, DomainError | PolicyEvent]] = []
        appended: AppendedLeaves | None = None
        with self._uow() as uow:
            refs = uow.events.stored([e.key for e in events])
            heads: dict[PolicyKey, PolicyHead] = uow.policies.heads(
                [(e.insurer_code, e.policy_no) for e in events]
            )
            hashes: dict[EventKey, str] = {k: ref.content_hash for k, ref in refs.items()}
            rows: list[NewEventRow] = []
            committed: list[tuple[str | None, ...]] = []  # the ledger's: entries to build
            head_rows: dict[PolicyKey, HeadRow] = {}
            rejected = 0
            for line_no, item in parsed:
                if isinstance(item, DomainError):
                    outcomes.append((line_no, LineStatus.REJECTED, item))
                    rejected += 1
                    continue
                canonical = item.canonical()
                content_hash = content_hash_of(canonical)
                policy_key = (item.insurer_code, item.policy_no)
                try:
                    outcome = decide(
                        item, content_hash, hashes.get(item.key), heads.get(policy_key)
                    )
                except DomainError as error:
                    outcomes.append((line_no, LineStatus.REJECTED, error))
                    rejected += 1
                    continue
                if outcome is Outcome.DUPLICATE:
                    outcomes.append((line_no, LineStatus.DUPLICATE, item))
                    continue
                hashes[item.key] = content_hash
                rows.append(self._row(item, content_hash, now))
                committed.append(canonical)
                outcomes.append((line_no, LineStatus.ACCEPTED, item))
                if outcome is Outcome.HEAD:
                    heads[policy_key] = PolicyHead(item.version, item.event_type)
                    head_rows[policy_key] = _head_row(item, len(rows) - 1)
            entries = self._ledger.entries.build_many(committed)  # before any lock
            event_ids = uow.events.add_many(rows)
            uow.policies.upsert_heads(list(head_rows.values()), event_ids)
            if rows:
                uow.insurers.touch_sync(insurer_code, now)
            if rows or rejected:
                minute = now.replace(second=0, microsecond=0)
                uow.insurers.record_activity(insurer_code, minute, len(rows), rejected)
            if rows:  # last: the append lock is held from here to the commit
                appended = self._ledger.append(uow.ledger, entries, event_ids, now)
            uow.commit()
        if self._fence is not None and appended is not None:
            # Before any answer of this write leaves: the next read must see it.
            self._fence.passed(appended.leaves[-1].leaf_index + 1)
        leaves: dict[EventKey, LeafReceipt] = {}
        for position, (row, event_id) in enumerate(zip(rows, event_ids, strict=True)):
            key = (row.insurer_code, row.policy_no, row.version)
            refs[key] = StoredEventRef(event_id, row.content_hash, now)
            if appended is not None:
                leaves[key] = appended.leaves[position]
        # A duplicate (even of a line earlier in this chunk) answers as the original did.
        results = [
            LineResult(line_no, status, item)
            if isinstance(item, DomainError)
            else LineResult(
                line_no,
                status,
                None,
                item,
                refs[item.key],
                leaves.get(item.key) if status is LineStatus.ACCEPTED else None,
            )
            for line_no, status, item in outcomes
        ]
        return results, appended

    def _row(self, event: PolicyEvent, content_hash: str, now: datetime) -> NewEventRow:
        encrypt = self._personal.encrypt
        key = event.key
        return NewEventRow(
            insurer_code=event.insurer_code,
            policy_no=event.policy_no,
            version=event.version,
            event_type=event.event_type.value,
            occurred_at=event.occurred_at,
            received_at=now,
            plate=event.plate.value,
            vin=event.vin.value,
            vehicle_type=event.vehicle_type.value,
            use_nature=event.use_nature.value,
            owner_id_type=event.owner_id_type.value,
            owner_name_enc=encrypt(event.owner_name, aad=personal_aad(key, "owner_name")),
            owner_id_enc=encrypt(
                event.owner_id_number.value, aad=personal_aad(key, "owner_id_number")
            ),
            owner_phone_enc=(
                encrypt(event.owner_phone, aad=personal_aad(key, "owner_phone"))
                if event.owner_phone
                else None
            ),
            owner_id_bidx=self._personal.blind_index(event.owner_id_number.value),
            coverage_start=event.coverage_start,
            coverage_end=event.coverage_end,
            effective_at=event.effective_at,
            premium=event.premium,
            region_code=event.region_code,
            prior_policy_no=event.prior_policy_no,
            content_hash=content_hash,
        )


def _head_row(event: PolicyEvent, row_index: int) -> HeadRow:
    return HeadRow(
        insurer_code=event.insurer_code,
        policy_no=event.policy_no,
        version=event.version,
        event_type=event.event_type.value,
        vin=event.vin.value,
        coverage_start=event.coverage_start,
        coverage_end=event.coverage_end,
        effective_at=event.effective_at,
        event_index=row_index,
    )
