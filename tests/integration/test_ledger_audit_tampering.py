"""``ctplhub ledger audit`` against a database tampered with directly (issue 8): each
alteration, insertion or removal is named by its leaf index and event, on both engines."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text, update

from ctplhub.api.presenters import signed_tree_head
from ctplhub.bootstrap import Container
from ctplhub.ledger import TreeHead, stored_hash_index
from ctplhub.security.answer_signing import plain_canonical_json, verify_signed
from ctplhub.services.ledger_audit import AuditReport, LedgerAudit
from ctplhub.services.ledger_findings import Finding, FindingKind, Subject
from ctplhub.services.report_events import personal_aad
from ctplhub.store.ledger_audit import SqlLedgerAuditSource
from ctplhub.store.tables import ledger_leaves
from helpers import event
from ledger_tables import overwrite_stored_hash

EVENTS = 20


@pytest.fixture
def logged(container: Container, monkeypatch: pytest.MonkeyPatch) -> Container:
    """20 events in four transactions (four signed tree heads: 5, 10, 15, 20)."""
    container.insurers.add("PICC", "中国人保", actor="test")
    monkeypatch.setattr("ctplhub.services.report_events.CHUNK_SIZE", 5)
    lines = [(i, event(policy_no=f"A{i:03d}")) for i in range(EVENTS)]
    assert all(r.leaf for r in container.report_events.report_many(lines, insurer_code="PICC"))
    return container


def sql(container: Container, statement: str, **params: Any) -> None:
    with container.engine.begin() as conn:
        conn.execute(text(statement), params)


def event_of(container: Container, leaf_index: int) -> int:
    with container.engine.connect() as conn:
        return int(
            conn.execute(
                select(ledger_leaves.c.event_id).where(ledger_leaves.c.leaf_index == leaf_index)
            ).scalar_one()
        )


def audit(container: Container, since: dict[str, Any] | None = None) -> AuditReport:
    return container.ledger_audit.run(since)


def only(report: AuditReport) -> Finding:
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


def test_an_untouched_ledger_is_clean(logged: Container) -> None:
    report = audit(logged)
    assert report.clean, report.findings
    assert (report.leaves, report.events, report.tree_heads) == (EVENTS, EVENTS, 4)
    head = logged.ledger_audit.latest_tree_head()
    assert head is not None and head.head.root_hash == report.root


def test_an_altered_event_column_is_named(logged: Container) -> None:
    target = event_of(logged, 7)
    sql(logged, "UPDATE policy_events SET premium = 1.00 WHERE id = :id", id=target)
    finding = only(audit(logged))
    assert (finding.kind, finding.subject) == (FindingKind.ALTERED, Subject.EVENT)
    assert (finding.leaf_index, finding.event_id) == (7, target)
    assert "premium" in finding.detail


def test_an_altered_personal_field_is_named(logged: Container) -> None:
    target = event_of(logged, 3)
    with logged.engine.connect() as conn:
        key = conn.execute(
            text("SELECT insurer_code, policy_no, version FROM policy_events WHERE id = :id"),
            {"id": target},
        ).one()
    personal = logged.report_events._personal  # a well-sealed, different owner
    sealed = personal.encrypt("李四", aad=personal_aad(tuple(key), "owner_name"))
    sql(logged, "UPDATE policy_events SET owner_name_enc = :v WHERE id = :id", v=sealed, id=target)
    finding = only(audit(logged))
    assert (finding.subject, finding.leaf_index, finding.event_id) == (Subject.EVENT, 3, target)
    assert "owner_name" in finding.detail


def test_an_altered_entry_is_named(logged: Container) -> None:
    target = event_of(logged, 12)
    with logged.engine.connect() as conn:
        entry = json.loads(
            conn.execute(text("SELECT entry FROM ledger_leaves WHERE leaf_index = 12")).scalar_one()
        )
    entry["premium"] = "1.00"
    sql(
        logged,
        "UPDATE ledger_leaves SET entry = :e WHERE leaf_index = 12",
        e=orjson.dumps(entry, option=orjson.OPT_SORT_KEYS),
    )
    finding = only(audit(logged))
    assert (finding.kind, finding.subject) == (FindingKind.ALTERED, Subject.ENTRY)
    assert (finding.leaf_index, finding.event_id) == (12, target)


def test_a_deleted_leaf_is_named_with_its_event(logged: Container) -> None:
    target = event_of(logged, 9)
    sql(logged, "DELETE FROM ledger_leaves WHERE leaf_index = 9")
    finding = only(audit(logged))
    assert (finding.kind, finding.subject) == (FindingKind.REMOVED, Subject.LEAF)
    assert (finding.leaf_index, finding.event_id) == (9, target)


def test_a_deleted_leaf_with_the_rest_renumbered_is_one_finding(logged: Container) -> None:
    target = event_of(logged, 4)
    sql(logged, "DELETE FROM ledger_leaves WHERE leaf_index = 4")
    for index in range(5, EVENTS):
        sql(
            logged,
            "UPDATE ledger_leaves SET leaf_index = :a WHERE leaf_index = :b",
            a=index - 1,
            b=index,
        )
    finding = only(audit(logged))
    assert (finding.kind, finding.leaf_index, finding.event_id) == (FindingKind.REMOVED, 4, target)


def test_an_inserted_leaf_is_named_with_its_event(logged: Container) -> None:
    columns = (
        "insurer_code, event_type, version, occurred_at, received_at, plate, vin, vehicle_type, "
        "use_nature, owner_id_type, owner_name_enc, owner_id_enc, owner_phone_enc, owner_id_bidx, "
        "coverage_start, coverage_end, effective_at, premium, region_code, prior_policy_no, "
        "content_hash"
    )
    sql(
        logged,
        f"INSERT INTO policy_events (policy_no, {columns}) "
        f"SELECT 'FORGED', {columns} FROM policy_events WHERE policy_no = 'A000'",
    )
    with logged.engine.connect() as conn:
        forged = conn.execute(
            text("SELECT id FROM policy_events WHERE policy_no = 'FORGED'")
        ).scalar_one()
    sql(
        logged,
        "INSERT INTO ledger_leaves (leaf_index, event_id, entry, salts_enc, hashes) "
        "SELECT :n, :e, entry, salts_enc, hashes FROM ledger_leaves WHERE leaf_index = 0",
        n=EVENTS,
        e=forged,
    )
    finding = only(audit(logged))
    assert (finding.kind, finding.subject) == (FindingKind.INSERTED, Subject.LEAF)
    assert (finding.leaf_index, finding.event_id) == (EVENTS, forged)


def test_an_altered_leaf_hash_is_named(logged: Container) -> None:
    target = event_of(logged, 6)
    assert overwrite_stored_hash(logged.engine, stored_hash_index(0, 6), b"\x01" * 32) == 6
    finding = only(audit(logged))
    assert (finding.subject, finding.leaf_index, finding.event_id) == (
        Subject.STORED_HASH,
        6,
        target,
    )
    assert finding.stored_index == stored_hash_index(0, 6)


def test_an_altered_interior_hash_is_named_with_its_leaves(logged: Container) -> None:
    index = stored_hash_index(2, 1)  # the subtree of leaves 4-7, kept in leaf 7's row
    assert overwrite_stored_hash(logged.engine, index, b"\x02" * 32) == 7
    finding = only(audit(logged))
    assert (finding.subject, finding.stored_index) == (Subject.STORED_HASH, index)
    assert finding.leaf_index == 7 and "leaves 4-7" in finding.detail
    assert "level 2 of the hashes of leaf 7" in finding.detail


def hashes_of(container: Container, leaf_index: int) -> bytes:
    with container.engine.connect() as conn:
        return bytes(
            conn.execute(
                select(ledger_leaves.c.hashes).where(ledger_leaves.c.leaf_index == leaf_index)
            ).scalar_one()
        )


def set_hashes(container: Container, leaf_index: int, value: bytes) -> None:
    with container.engine.begin() as conn:
        conn.execute(
            update(ledger_leaves)
            .where(ledger_leaves.c.leaf_index == leaf_index)
            .values(hashes=value)
        )


def test_a_leaf_s_rewritten_hashes_are_named_by_that_leaf(logged: Container) -> None:
    """Leaf 11 completes the subtrees 10-11 and 8-11: its row holds three hashes. Its
    leaf hash kept, both subtree hashes rewritten: two findings, both naming leaf 11."""
    held = hashes_of(logged, 11)
    assert len(held) == 3 * 32
    set_hashes(logged, 11, held[:32] + b"\x03" * 64)
    findings = audit(logged).findings
    assert [(f.kind, f.subject, f.leaf_index, f.stored_index) for f in findings] == [
        (FindingKind.ALTERED, Subject.STORED_HASH, 11, stored_hash_index(1, 5)),
        (FindingKind.ALTERED, Subject.STORED_HASH, 11, stored_hash_index(2, 2)),
    ]


def test_a_leaf_s_cut_hashes_are_named_by_that_leaf(logged: Container) -> None:
    set_hashes(logged, 11, hashes_of(logged, 11)[:32])
    findings = audit(logged).findings
    assert [(f.kind, f.subject, f.leaf_index, f.stored_index) for f in findings] == [
        (FindingKind.REMOVED, Subject.STORED_HASH, 11, stored_hash_index(1, 5)),
        (FindingKind.REMOVED, Subject.STORED_HASH, 11, stored_hash_index(2, 2)),
    ]


def test_a_leaf_s_lengthened_hashes_are_named_by_that_leaf(logged: Container) -> None:
    set_hashes(logged, 4, hashes_of(logged, 4) + b"\x04" * 32)
    finding = only(audit(logged))
    assert (finding.kind, finding.subject, finding.leaf_index) == (
        FindingKind.ALTERED,
        Subject.STORED_HASH,
        4,
    )


def test_a_leaf_s_emptied_hashes_are_named_with_its_event(logged: Container) -> None:
    target = event_of(logged, 6)
    set_hashes(logged, 6, b"")
    finding = only(audit(logged))
    assert (finding.subject, finding.leaf_index, finding.event_id) == (
        Subject.STORED_HASH,
        6,
        target,
    )


@pytest.mark.parametrize("column", ["timestamp_ms", "root_hash", "signature"])
def test_an_altered_tree_head_is_named(logged: Container, column: str) -> None:
    change = {
        "timestamp_ms": "timestamp_ms = timestamp_ms + 1",
        "root_hash": "root_hash = :h",
        "signature": "signature = :s",
    }[column]
    sql(
        logged,
        f"UPDATE ledger_tree_heads SET {change} WHERE tree_size = 10",
        h=b"\x03" * 32,
        s=b"\x04" * 64,
    )
    finding = only(audit(logged))
    assert (finding.subject, finding.tree_size) == (Subject.TREE_HEAD, 10)


def test_since_a_saved_head_the_log_only_grew(logged: Container) -> None:
    saved = logged.ledger_audit.latest_tree_head()
    assert saved is not None
    logged.report_events.report(event(policy_no="LATER"), insurer_code="PICC")
    assert audit(logged, signed_tree_head(saved)).clean


def test_a_saved_head_the_log_does_not_extend_is_a_finding(logged: Container) -> None:
    signer = logged.signer
    forged = TreeHead(10, b"\x05" * 32, 1)  # signed by the platform, yet another history
    head = signer.sign(dict(forged.to_signable()))
    finding = only(audit(logged, head))
    assert (finding.kind, finding.subject) == (FindingKind.INCONSISTENT, Subject.SINCE)
    too_long = signer.sign(dict(TreeHead(EVENTS + 5, b"\x05" * 32, 1).to_signable()))
    assert only(audit(logged, too_long)).subject is Subject.SINCE
    latest = logged.ledger_audit.latest_tree_head()
    assert latest is not None
    bad_signature = {**signed_tree_head(latest), "timestamp": 2}
    assert only(audit(logged, bad_signature)).subject is Subject.SINCE


def test_a_removed_tail_is_named(logged: Container) -> None:
    target = event_of(logged, EVENTS - 1)
    sql(logged, "DELETE FROM ledger_leaves WHERE leaf_index = :i", i=EVENTS - 1)
    findings = audit(logged).findings
    assert {(f.kind, f.leaf_index) for f in findings} >= {(FindingKind.REMOVED, EVENTS - 1)}
    assert any(f.event_id == target for f in findings)


def test_an_audit_beside_live_ingest_is_clean(logged: Container) -> None:
    """A writer commits between the audit's first read and the next: its leaf and head
    are left to the next audit, not taken for an insertion."""
    source = SqlLedgerAuditSource(logged.engine)
    first_bound = source.leaf_index_bound
    reads: list[int] = []

    def bound_then_a_writer_commits() -> int:
        value = first_bound()
        if not reads:
            logged.report_events.report(event(policy_no="LIVE"), insurer_code="PICC")
        reads.append(value)
        return value

    source.leaf_index_bound = bound_then_a_writer_commits  # type: ignore[method-assign]
    personal = logged.report_events._personal
    verify = partial(verify_signed, jwks=logged.signer.jwks())
    report = LedgerAudit(source, personal, plain_canonical_json, verify).run()
    assert report.clean, report.findings
    assert report.leaves == EVENTS and reads[0] == EVENTS
