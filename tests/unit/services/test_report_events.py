"""ReportEvents against in-memory fakes of its ports (STYLE.md example 8): the version
rules across a chunk, receipts for repeats, and the retry after a lost race."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pytest

from ctplhub.domain.policy import EventType, PolicyHead
from ctplhub.ledger import HASH_SIZE, TreeHead, stored_hash_index, tree_hash
from ctplhub.services.ledger_append import LedgerWriter
from ctplhub.services.ledger_ports import LeafRow
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.services.ports import (
    EventKey,
    HeadRow,
    NewEventRow,
    PolicyKey,
    RetryableConflict,
    StoredEventRef,
)
from ctplhub.services.report_events import ReportEvents
from helpers import event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


class FakeStore:
    """What the fake repositories share; survives units of work, like a database."""

    def __init__(self) -> None:
        self.events: dict[EventKey, tuple[int, NewEventRow]] = {}
        self.heads: dict[PolicyKey, HeadRow] = {}
        self.activity: list[tuple[int, int]] = []
        self.synced_at: datetime | None = None
        self.races_to_lose = 0
        self.leaves: list[LeafRow] = []
        self.hashes: dict[int, bytes] = {}
        self.tree_heads: list[SignedTreeHead] = []


class FakeEvents:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.pending: list[tuple[EventKey, NewEventRow]] = []

    def stored(self, keys: Sequence[EventKey]) -> dict[EventKey, StoredEventRef]:
        return {
            k: StoredEventRef(i, row.content_hash, row.received_at)
            for k in keys
            if k in self.store.events
            for i, row in [self.store.events[k]]
        }

    def add_many(self, rows: Sequence[NewEventRow]) -> list[int]:
        if self.store.races_to_lose:
            self.store.races_to_lose -= 1
            raise RetryableConflict("another writer stored the same key first")
        start = len(self.store.events) + len(self.pending) + 1
        ids = list(range(start, start + len(rows)))
        self.pending += [((r.insurer_code, r.policy_no, r.version), r) for r in rows]
        return ids


class FakePolicies:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.pending: list[HeadRow] = []

    def heads(self, keys: Sequence[PolicyKey]) -> dict[PolicyKey, PolicyHead]:
        return {
            k: PolicyHead(h.version, EventType(h.event_type))
            for k in keys
            if (h := self.store.heads.get(k)) is not None
        }

    def upsert_heads(self, rows: Sequence[HeadRow], event_ids: Sequence[int]) -> None:
        self.pending += rows


class FakeInsurers:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def touch_sync(self, code: str, at: datetime) -> None:
        self.store.synced_at = at

    def record_activity(self, code: str, minute: datetime, accepted: int, rejected: int) -> None:
        self.store.activity.append((accepted, rejected))


class FakeLedger:
    """The ledger tables; appends become visible at commit, like the others."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.pending: list[tuple[list[LeafRow], SignedTreeHead]] = []
        self.locked = False

    def lock_for_append(self) -> int:
        self.locked = True
        return len(self.store.leaves)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.store.hashes[i] for i in indexes]

    def append(self, leaves: Sequence[LeafRow], head: SignedTreeHead) -> None:
        assert self.locked, "appended without the lock"
        self.pending.append((list(leaves), head))

    def leaf_of_event(self, event_id: int) -> LeafRow | None:
        return next((row for row in self.store.leaves if row.event_id == event_id), None)

    def head_covering(self, leaf_index: int) -> SignedTreeHead | None:
        return min(
            (h for h in self.store.tree_heads if h.head.tree_size > leaf_index),
            key=lambda h: h.head.tree_size,
            default=None,
        )


class FakeUnitOfWork:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def __enter__(self) -> FakeUnitOfWork:
        self.events = FakeEvents(self.store)
        self.policies = FakePolicies(self.store)
        self.insurers = FakeInsurers(self.store)
        self.ledger = FakeLedger(self.store)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass  # nothing committed is kept: like a rollback

    def commit(self) -> None:
        for leaves, head in self.ledger.pending:
            self.store.leaves += leaves
            for row in leaves:  # each row's hashes, at consecutive stored indexes
                first = stored_hash_index(0, row.leaf_index)
                for level in range(len(row.hashes) // HASH_SIZE):
                    value = row.hashes[level * HASH_SIZE : (level + 1) * HASH_SIZE]
                    self.store.hashes[first + level] = value
            self.store.tree_heads.append(head)
        for key, row in self.events.pending:
            self.store.events[key] = (len(self.store.events) + 1, row)
        for head in self.policies.pending:
            key = (head.insurer_code, head.policy_no)
            held = self.store.heads.get(key)
            if held is None or PolicyHead(held.version, EventType(held.event_type)).outranked_by(
                head.version, EventType(head.event_type)
            ):
                self.store.heads[key] = head


class FakePersonalData:
    def encrypt(self, plaintext: str, *, aad: bytes) -> bytes:
        if aad.startswith(b"ledger_leaves|"):  # the salts: opened again for repeats
            return plaintext.encode() + b"|sealed:" + aad
        return b"sealed:" + aad

    def encrypt_many(self, plaintexts: Sequence[str], aads: Sequence[bytes]) -> list[bytes]:
        return [self.encrypt(p, aad=a) for p, a in zip(plaintexts, aads, strict=True)]

    def decrypt(self, blob: bytes, *, aad: bytes) -> str:
        plain, _, bound = blob.partition(b"|sealed:")
        assert bound == aad, "opened under other associated data"
        return plain.decode()

    def blind_index(self, value: str) -> bytes:
        return b"index"


class FakeStatistics:
    def __init__(self) -> None:
        self.refreshed: list[int] = []

    def refresh(self, written: int) -> list[str]:
        self.refreshed.append(written)
        return ["policy_events"]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def report(store: FakeStore) -> ReportEvents:
    def uow() -> Any:
        return FakeUnitOfWork(store)

    ledger = LedgerWriter(FakePersonalData(), _json, _sign)
    return ReportEvents(uow, FakePersonalData(), lambda: NOW, FakeStatistics(), ledger)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _sign(head: TreeHead) -> SignedTreeHead:
    return SignedTreeHead(head, "k1", b"\x00")


def lines(*events: dict[str, Any]) -> list[tuple[int, Any]]:
    return list(enumerate(events, start=1))


def test_versions_in_one_chunk_behave_as_if_they_arrived_one_by_one(
    report: ReportEvents, store: FakeStore
) -> None:
    results = list(
        report.report_many(
            lines(
                event(),
                event(version=2, event_type="surrender", effective_at="2025-06-01T00:00:00+08:00"),
                event(version=3, event_type="endorse"),
                event(),  # an identical repeat of line 1
                event(premium="1.00"),  # same key, other content
            ),
            insurer_code="PICC",
        )
    )
    assert [r.status for r in results] == [
        "accepted",
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
    ]
    assert [r.error.code for r in results if r.error] == ["policy_closed", "conflict"]
    assert results[3].receipt == results[0].receipt  # a repeat answers as the first did
    assert store.heads[("PICC", "PDAA2025320500000001")].version == 2
    assert len(store.events) == 2
    assert store.activity == [(2, 2)]
    assert store.synced_at == NOW


def test_a_cancel_rules_over_a_higher_version_that_arrived_first(
    report: ReportEvents, store: FakeStore
) -> None:
    # Version 3 was written at the insurer before it saw the cancel, and reached us first.
    results = list(
        report.report_many(
            lines(
                event(),
                event(version=3, event_type="endorse", premium="990.00"),
                event(version=2, event_type="cancel"),
                event(version=4, event_type="endorse"),
                event(version=1, event_type="issue"),  # a repeat, still answered as one
            ),
            insurer_code="PICC",
        )
    )
    assert [r.status for r in results] == [
        "accepted",
        "accepted",
        "accepted",
        "rejected",
        "duplicate",
    ]
    assert results[3].error is not None and results[3].error.code == "policy_closed"
    head = store.heads[("PICC", "PDAA2025320500000001")]
    assert (head.version, head.event_type) == (2, "cancel")
    assert len(store.events) == 3  # the endorse is kept as history


def test_a_lower_cancel_takes_over_from_a_higher_surrender(
    report: ReportEvents, store: FakeStore
) -> None:
    surrender = event(version=3, event_type="surrender", effective_at="2025-06-01T00:00:00+08:00")
    list(
        report.report_many(
            lines(surrender, event(version=2, event_type="cancel")), insurer_code="PICC"
        )
    )
    head = store.heads[("PICC", "PDAA2025320500000001")]
    assert (head.version, head.event_type) == (2, "cancel")


def test_personal_data_reaches_the_store_only_sealed(
    report: ReportEvents, store: FakeStore
) -> None:
    list(report.report_many(lines(event()), insurer_code="PICC"))
    ((_, row),) = store.events.values()
    assert row.owner_name_enc == b"sealed:PICC|PDAA2025320500000001|1|owner_name"
    assert "张伟" not in repr(row)


def test_a_chunk_that_loses_a_race_is_decided_again(report: ReportEvents, store: FakeStore) -> None:
    store.races_to_lose = 1
    results = list(report.report_many(lines(event(), event(version=2)), insurer_code="PICC"))
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert len(store.events) == 2


def test_a_writer_that_keeps_losing_gives_up_without_storing(
    report: ReportEvents, store: FakeStore
) -> None:
    store.races_to_lose = 10
    with pytest.raises(RetryableConflict):
        list(report.report_many(lines(event()), insurer_code="PICC"))
    assert store.events == {}


def test_every_accepted_event_gets_one_leaf_in_its_own_transaction(
    report: ReportEvents, store: FakeStore
) -> None:
    results = list(
        report.report_many(
            lines(event(), event(version=2), event(), event(premium="bad")), insurer_code="PICC"
        )
    )
    assert [r.status for r in results] == ["accepted", "accepted", "duplicate", "rejected"]
    assert [row.leaf_index for row in store.leaves] == [0, 1]
    assert [row.event_id for row in store.leaves] == [1, 2]
    assert [r.leaf.leaf_index for r in results if r.leaf] == [0, 1]
    (head,) = store.tree_heads  # one signed head per transaction
    leaf_hashes = [store.hashes[stored_hash_index(0, i)] for i in range(2)]
    assert head.head == TreeHead(2, tree_hash(leaf_hashes), int(NOW.timestamp() * 1000))
    entry = json.loads(store.leaves[0].entry)
    assert entry["version"] == 1 and "owner_name" in entry and "张伟" not in str(entry)
    assert results[0].leaf is not None
    assert set(results[0].leaf.salts) == {
        "plate",
        "vin",
        "owner_name",
        "owner_id_type",
        "owner_id_number",
        "owner_phone",
    }


def test_a_repeat_answers_with_the_first_receipt(report: ReportEvents, store: FakeStore) -> None:
    created, first = report.report(event(), insurer_code="PICC")
    report.report(event(policy_no="P2"), insurer_code="PICC")  # the tree grows meanwhile
    again_created, again = report.report(event(), insurer_code="PICC")
    assert (created, again_created) == (True, False)
    assert again == first and first.ledger is not None
    assert first.ledger.leaf.tree_head.head.tree_size == 1


def test_a_chunk_that_loses_a_race_appends_nothing_twice(
    report: ReportEvents, store: FakeStore
) -> None:
    store.races_to_lose = 1
    list(report.report_many(lines(event(), event(version=2)), insurer_code="PICC"))
    assert [row.leaf_index for row in store.leaves] == [0, 1]
    assert len(store.tree_heads) == 1
