"""The ledger's write path (DESIGN §6, issue 8) on both engines: every accepted event is
one leaf, appended in its own transaction; receipts prove what they claim; a repeat gets
the first receipt again; the stored tree is the tree of the stored entries."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient
from test_batch_api import ndjson

from ctplhub.bootstrap import Container
from ctplhub.domain.policy import parse_event
from ctplhub.ledger import (
    HASH_SIZE,
    StoredHashesMissing,
    TreeHead,
    commitment,
    inclusion_proof,
    leaf_hash,
    leaf_hash_count,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
    verify_inclusion,
)
from ctplhub.security.answer_signing import canonical_json, verify_signed
from ctplhub.services.ledger_entries import entry_fields
from ctplhub.store.tables import ledger_leaves, ledger_tree_heads, policy_events
from helpers import InsurerAccount, event


def stored_tree(container: Container) -> tuple[list[tuple[int, int, bytes]], dict[int, bytes]]:
    with container.engine.connect() as conn:
        leaves = [
            (r[0], r[1], bytes(r[2]))
            for r in conn.execute(
                select(
                    ledger_leaves.c.leaf_index, ledger_leaves.c.event_id, ledger_leaves.c.entry
                ).order_by(ledger_leaves.c.leaf_index)
            )
        ]
        rows = conn.execute(select(ledger_leaves.c.leaf_index, ledger_leaves.c.hashes)).all()
    # Each leaf's row holds the hashes its append wrote, at consecutive stored indexes.
    hashes: dict[int, bytes] = {}
    for leaf, value in rows:
        first = stored_hash_index(0, leaf)
        assert len(value) == leaf_hash_count(leaf) * HASH_SIZE
        for level in range(leaf_hash_count(leaf)):
            hashes[first + level] = bytes(value[level * HASH_SIZE : (level + 1) * HASH_SIZE])
    return leaves, hashes


def reader(hashes: dict[int, bytes]) -> Any:
    def read(indexes: Any) -> list[bytes]:
        return [hashes[i] for i in indexes]

    return read


def assert_log_is_whole(container: Container) -> None:
    """Leaves 0..n-1, each event once, every stored hash right, the latest head the root."""
    leaves, hashes = stored_tree(container)
    n = len(leaves)
    assert [leaf for leaf, _, _ in leaves] == list(range(n))
    with container.engine.connect() as conn:
        events = sorted(r[0] for r in conn.execute(select(policy_events.c.id)))
        head = conn.execute(
            select(ledger_tree_heads).order_by(ledger_tree_heads.c.tree_size.desc()).limit(1)
        ).first()
    assert sorted(event_id for _, event_id, _ in leaves) == events
    assert len(hashes) == stored_hash_count(n) and sorted(hashes) == list(range(len(hashes)))
    leaf_hashes = [leaf_hash(entry) for _, _, entry in leaves]
    assert [hashes[stored_hash_index(0, i)] for i in range(n)] == leaf_hashes
    assert head is not None and head.tree_size == n
    assert bytes(head.root_hash) == tree_hash(leaf_hashes)


def test_a_201_carries_a_receipt_that_proves_the_event(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    picc.api.report_event(event(policy_no="P0"))  # a tree of more than one leaf
    sent = event(policy_no="P1")
    answer = picc.api.report_event(sent)
    receipt = answer["receipt"]
    head = receipt["tree_head"]
    assert verify_signed(head, client.get("/.well-known/ctplhub-keys.json").json())
    assert (receipt["leaf_index"], head["tree_size"]) == (1, 2)
    proof = [bytes.fromhex(h) for h in receipt["inclusion_proof"]]
    verify_inclusion(
        1, 2, bytes.fromhex(receipt["leaf_hash"]), proof, bytes.fromhex(head["root_hash"])
    )
    # The leaf is the JCS of the entry, and the salts open its commitments.
    leaves, _ = stored_tree(container)
    entry = json.loads(leaves[1][2])
    assert leaf_hash(canonical_json(entry)) == bytes.fromhex(receipt["leaf_hash"])
    parsed = parse_event(sent)
    assert entry == {
        **entry_fields(parsed.canonical()),
        **{
            name: commitment(bytes.fromhex(salt), str(entry_fields(parsed.canonical())[name]))
            for name, salt in receipt["salts"].items()
        },
    }
    assert entry["plate"] != parsed.plate.value and parsed.vin.value not in leaves[1][2].decode()
    assert entry["version"] == 1 and "owner_phone" in receipt["salts"]


def test_an_event_without_a_phone_commits_no_phone(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    answer = picc.api.report_event(event(owner_phone=None))
    assert "owner_phone" not in answer["receipt"]["salts"]
    leaves, _ = stored_tree(container)
    assert "owner_phone" not in json.loads(leaves[0][2])


def test_a_repeat_returns_the_first_receipt_even_after_the_log_grew(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    created = picc.api.request("POST", "/v1/policy-events", json=event())
    picc.api.report_batch(ndjson(*(event(policy_no=f"B{i}") for i in range(5))))
    again = picc.api.request("POST", "/v1/policy-events", json=event())
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json() == created.json()
    assert again.json()["receipt"]["tree_head"]["tree_size"] == 1


def test_a_batch_gives_each_accepted_line_its_leaf_and_one_tree_head(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    lines = [event(policy_no=f"P{i}") for i in range(7)]
    lines.insert(3, event(policy_no="BAD", plate="nonsense"))
    lines.append(event(policy_no="P0"))  # an identical repeat
    answer = picc.api.report_batch(ndjson(*lines))
    head = answer["tree_head"]
    assert head["tree_size"] == 7
    accepted = [r for r in answer["results"] if r["status"] == "accepted"]
    assert [r["receipt"]["leaf_index"] for r in accepted] == list(range(7))
    assert all("receipt" not in r for r in answer["results"] if r["status"] != "accepted")
    _, hashes = stored_tree(container)
    root = bytes.fromhex(head["root_hash"])
    for line in accepted:  # each proof as the proof endpoint would give it
        leaf = line["receipt"]["leaf_index"]
        proof = inclusion_proof(leaf, 7, reader(hashes))
        verify_inclusion(leaf, 7, bytes.fromhex(line["receipt"]["leaf_hash"]), proof, root)
    assert_log_is_whole(container)


def test_chunks_append_in_order_with_a_head_each(
    container: Container, picc: InsurerAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ctplhub.services.report_events.CHUNK_SIZE", 3)
    lines = [(i, event(policy_no=f"C{i}")) for i in range(1, 9)]
    results = list(container.report_events.report_many(lines, insurer_code="PICC"))
    assert [r.leaf.leaf_index for r in results if r.leaf] == list(range(8))
    with container.engine.connect() as conn:
        sizes = [r[0] for r in conn.execute(select(ledger_tree_heads.c.tree_size))]
    assert sorted(sizes) == [3, 6, 8]
    assert_log_is_whole(container)


def test_a_failed_transaction_leaves_no_leaf(
    container: Container, picc: InsurerAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the signer failed")

    monkeypatch.setattr(container.report_events._ledger, "_sign", broken)
    with pytest.raises(RuntimeError):
        container.report_events.report(event(), insurer_code="PICC")
    leaves, hashes = stored_tree(container)
    with container.engine.connect() as conn:
        assert conn.execute(select(policy_events.c.id)).first() is None
    assert (leaves, hashes) == ([], {})


def test_tree_heads_are_signed_by_the_published_keys(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    picc.api.report_batch(ndjson(*(event(policy_no=f"S{i}") for i in range(3))))
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    with container.engine.connect() as conn:
        (row,) = conn.execute(select(ledger_tree_heads)).all()
    head = TreeHead(row.tree_size, bytes(row.root_hash), row.timestamp_ms)
    signed = {
        **head.to_signable(),
        "signature": {
            "alg": "Ed25519",
            "kid": row.kid,
            "value": base64.b64encode(bytes(row.signature)).decode(),
        },
    }
    assert verify_signed(signed, jwks)
    tampered = {**signed, "tree_size": 4}
    assert not verify_signed(tampered, jwks)


def test_a_missing_stored_hash_is_refused_not_guessed(
    container: Container, picc: InsurerAccount
) -> None:
    container.report_events.report(event(policy_no="H1"), insurer_code="PICC")
    with container.engine.begin() as conn:
        conn.execute(update(ledger_leaves).values(hashes=b""))
    with pytest.raises(StoredHashesMissing):
        container.report_events.report(event(policy_no="H2"), insurer_code="PICC")
    with container.engine.connect() as conn:  # nothing was half-stored
        assert conn.execute(select(policy_events.c.policy_no)).scalars().all() == ["H1"]
