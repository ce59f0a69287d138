"""The public ledger endpoints (DESIGN §6) on both engines, over a real log stored in the
ledger tables: proofs verify against the stored signed roots and equal the RFC's own
definitions, a proof reads O(log n) rows in one statement, bad parameters are 400."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.ledger import (
    EMPTY_ROOT,
    inclusion_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from ctplhub.security.answer_signing import verify_signed
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.store.readers.ledger import sync_hash_reader
from helpers import InsurerAccount, event
from ledger_tables import BuiltLog, clear_ledger, entry_bytes, fill_ledger, rfc_model

N = 300
SIGNED = (1, 2, 7, 64, 100, 257, N)


@pytest.fixture
def log(container: Container) -> BuiltLog:
    clear_ledger(container.engine)
    entries = [entry_bytes(n) for n in range(N)]
    return fill_ledger(container.engine, entries, container.signer, signed_sizes=SIGNED)


def _hashes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def test_an_empty_log_answers_the_empty_tree_head_signed(
    client: TestClient, container: Container
) -> None:
    clear_ledger(container.engine)
    answer = client.get("/v1/ledger/tree-head")
    assert answer.status_code == 200
    head = answer.json()
    assert head["tree_size"] == 0 and head["root_hash"] == EMPTY_ROOT.hex()
    assert verify_signed(head, client.get("/.well-known/ctplhub-keys.json").json())
    assert answer.headers["cache-control"] == "no-store"
    refused = client.get("/v1/ledger/proof/inclusion", params={"leaf_index": 0, "tree_size": 1})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "validation_failed"


def test_the_tree_head_is_the_latest_signed_one(client: TestClient, log: BuiltLog) -> None:
    answer = client.get("/v1/ledger/tree-head")
    assert answer.status_code == 200
    assert answer.json() == log.heads[N]
    assert verify_signed(answer.json(), client.get("/.well-known/ctplhub-keys.json").json())
    assert answer.json()["root_hash"] == rfc_model().mth(log.entries).hex()


def test_inclusion_proofs_verify_against_the_signed_roots_and_equal_the_rfc(
    client: TestClient, log: BuiltLog
) -> None:
    model = rfc_model()
    for size in SIGNED:
        root = bytes.fromhex(log.heads[size]["root_hash"])
        for leaf in sorted({0, size // 2, size - 1, (size * 7) // 11}):
            answer = client.get(
                "/v1/ledger/proof/inclusion", params={"leaf_index": leaf, "tree_size": size}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["leaf_index"], body["tree_size"]) == (leaf, size)
            path = _hashes(body["audit_path"])
            assert path == model.path(leaf, log.entries[:size])
            verify_inclusion(leaf, size, log.leaves[leaf], path, root)
            assert "max-age" in answer.headers["cache-control"]


def test_consistency_proofs_verify_against_the_signed_roots_and_equal_the_rfc(
    client: TestClient, log: BuiltLog
) -> None:
    model = rfc_model()
    for first in SIGNED:
        for second in SIGNED:
            if second < first:
                continue
            answer = client.get(
                "/v1/ledger/proof/consistency", params={"first": first, "second": second}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            path = _hashes(body["consistency_path"])
            assert path == model.proof(first, log.entries[:second])
            verify_consistency(
                first,
                second,
                bytes.fromhex(log.heads[first]["root_hash"]),
                bytes.fromhex(log.heads[second]["root_hash"]),
                path,
            )


def test_a_proof_is_one_statement_of_logarithmically_many_rows(
    client: TestClient, container: Container, log: BuiltLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = container.ledger_reader
    seen: list[int] = []
    original = reader.rows

    async def counting(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows = await original(sql, params)
        seen.append(len(rows))
        return rows

    monkeypatch.setattr(reader, "rows", counting)
    for path, params in (
        ("/v1/ledger/proof/inclusion", {"leaf_index": 123, "tree_size": N}),
        ("/v1/ledger/proof/consistency", {"first": 257, "second": N}),
        ("/v1/ledger/proof/consistency", {"first": 7, "second": 257}),
    ):
        seen.clear()
        assert client.get(path, params=params).status_code == 200
        assert len(seen) == 1, f"{path}: {len(seen)} statements"
        assert seen[0] <= 2 * N.bit_length() + 2 + 1  # plus the size guard's row


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/ledger/proof/inclusion", {"leaf_index": 0, "tree_size": N + 1}, "validation_failed"),
        ("/v1/ledger/proof/inclusion", {"leaf_index": 5, "tree_size": 5}, "validation_failed"),
        ("/v1/ledger/proof/inclusion", {"leaf_index": -1, "tree_size": 5}, "validation_failed"),
        ("/v1/ledger/proof/inclusion", {"leaf_index": "x", "tree_size": 5}, "validation_failed"),
        ("/v1/ledger/proof/inclusion", {"leaf_index": 0, "tree_size": 2**80}, "validation_failed"),
        ("/v1/ledger/proof/inclusion", {"leaf_index": 0}, "validation_failed"),
        ("/v1/ledger/proof/consistency", {"first": 0, "second": 5}, "validation_failed"),
        ("/v1/ledger/proof/consistency", {"first": 6, "second": 5}, "validation_failed"),
        ("/v1/ledger/proof/consistency", {"first": 1, "second": N + 1}, "validation_failed"),
        ("/v1/ledger/entries", {"start": 0, "end": 1001}, "range_too_large"),
        ("/v1/ledger/entries", {"start": 5, "end": 5}, "validation_failed"),
        ("/v1/ledger/entries", {"start": -1, "end": 5}, "validation_failed"),
    ],
)
def test_bad_or_out_of_range_parameters_are_400(
    client: TestClient, log: BuiltLog, path: str, params: dict[str, Any], code: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code
    assert "max-age" not in answer.headers.get("cache-control", "")


def test_a_size_past_the_log_names_the_current_size(client: TestClient, log: BuiltLog) -> None:
    params = {"leaf_index": 0, "tree_size": N + 1}
    error = client.get("/v1/ledger/proof/inclusion", params=params).json()["error"]
    assert error["details"] == [
        {"field": "tree_size", "problem": f"larger than the log ({N} leaves)"}
    ]


def test_equal_sizes_have_an_empty_consistency_proof(client: TestClient, log: BuiltLog) -> None:
    answer = client.get("/v1/ledger/proof/consistency", params={"first": 100, "second": 100})
    assert answer.status_code == 200
    assert answer.json()["consistency_path"] == []


def test_entries_come_with_their_stored_leaf_hashes(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    ids = [
        container.report_events.report(
            event(policy_no=f"PDAA20253205{n:08d}"), insurer_code=picc.code
        )[1].event_id
        for n in range(5)
    ]
    clear_ledger(container.engine)
    entries = [entry_bytes(n) for n in range(5)]
    built = fill_ledger(container.engine, entries, container.signer, signed_sizes=(3, 5),
                        event_ids=ids)  # fmt: skip
    answer = client.get("/v1/ledger/entries", params={"start": 1, "end": 4})
    assert answer.status_code == 200
    found = answer.json()["entries"]
    assert [e["leaf_index"] for e in found] == [1, 2, 3]
    for item in found:
        n = item["leaf_index"]
        assert item["leaf_hash"] == built.leaves[n].hex()
        assert item["entry"]["policy_no"] == f"PDAA2025{n:012d}"
        assert leaf_hash(entry_bytes(n)) == bytes.fromhex(item["leaf_hash"])
    assert "max-age" in answer.headers["cache-control"]
    # Past the signed tree: what exists, and not cached.
    tail = client.get("/v1/ledger/entries", params={"start": 3, "end": 1003})
    assert [e["leaf_index"] for e in tail.json()["entries"]] == [3, 4]
    assert tail.headers["cache-control"] == "no-store"
    assert client.get("/v1/ledger/entries", params={"start": 9, "end": 10}).json() == {
        "entries": []
    }


def test_the_sync_hash_reader_reads_the_same_hashes(
    client: TestClient, container: Container, log: BuiltLog
) -> None:
    with container.engine.connect() as conn:
        read = sync_hash_reader(conn)
        assert tree_root(N, read) == bytes.fromhex(log.heads[N]["root_hash"])
        path = inclusion_proof(123, N, read)
    served = client.get("/v1/ledger/proof/inclusion", params={"leaf_index": 123, "tree_size": N})
    assert _hashes(served.json()["audit_path"]) == path


def test_a_tree_head_is_read_back_by_its_size(container: Container, log: BuiltLog) -> None:
    reader = container.ledger_reader

    async def read(size: int) -> SignedTreeHead | None:
        try:
            return await reader.tree_head(size)
        finally:
            await reader.close()

    found = asyncio.run(read(100))
    assert found is not None and found.head.to_signable() == {
        k: v for k, v in log.heads[100].items() if k != "signature"
    }
    assert base64.b64encode(found.signature).decode() == log.heads[100]["signature"]["value"]
    assert asyncio.run(read(101)) is None
