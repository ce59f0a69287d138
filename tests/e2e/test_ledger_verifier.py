"""The standalone verifier (``ctplhub.verifier``) against a real server over HTTP, on both
engines: real receipts verify, a log that keeps growing is followed, and a rewritten,
forked, shrunk or falsely signed log is caught, by the functions and by the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ctplhub.bootstrap import Container
from ctplhub.ledger import TreeHead, stored_hash_index, streaming_root
from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.store.tables import ledger_tree_heads
from ctplhub.verifier import LedgerVerifier, VerificationFailed, commitment_matches
from helpers import VIN, InsurerAccount, event
from ledger_tables import (
    BuiltLog,
    clear_ledger,
    entry_bytes,
    fill_ledger,
    overwrite_stored_hash,
    sign_head,
    store_head,
)


@pytest.fixture
def verifier(live_server: str) -> Iterator[LedgerVerifier]:
    checker = LedgerVerifier(live_server)
    yield checker
    checker.close()


def _cli(live_server: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ctplhub.verifier", "--url", live_server, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_real_receipts_verify_and_open_their_commitments(
    verifier: LedgerVerifier, live_server: str, picc: InsurerAccount, tmp_path: Path
) -> None:
    answer = picc.api.report_event(event())
    head = verifier.verify_receipt(answer)
    assert head.tree_size == answer["receipt"]["leaf_index"] + 1
    salts = answer["receipt"]["salts"]
    entry = verifier.verify_leaf(answer["receipt"]["leaf_index"])
    assert commitment_matches(entry, "vin", VIN, salts["vin"])
    assert not commitment_matches(entry, "vin", "LFV2A21K6G3049982", salts["vin"])
    batch = picc.api.report_batch([event(policy_no=f"PDAA20253206{n:08d}") for n in range(3)])
    assert batch["accepted"] == 3
    assert verifier.verify_batch(batch) == 3
    receipt_file = tmp_path / "answer.json"
    receipt_file.write_text(json.dumps(answer, ensure_ascii=False))
    ran = _cli(live_server, "receipt", str(receipt_file))
    assert ran.returncode == 0, ran.stderr


N = 200
Grown = tuple[BuiltLog, dict[str, Any]]


@pytest.fixture
def grown(container: Container) -> Grown:
    """A log of 200 leaves whose latest signed head is at 100; the head at 200, signed
    but not yet published, is returned beside it."""
    clear_ledger(container.engine)
    entries = [entry_bytes(n) for n in range(N)]
    built = fill_ledger(container.engine, entries, container.signer, signed_sizes=(100,))
    root = streaming_root(built.leaves)
    return built, sign_head(container.signer, TreeHead(N, root, 1_764_000_000_999))


def test_following_a_growing_log(
    verifier: LedgerVerifier, live_server: str, container: Container, grown: Grown, tmp_path: Path
) -> None:
    state = tmp_path / "head.json"
    first = verifier.follow(state)
    assert first.previous is None and first.current.tree_size == 100
    store_head(container.engine, grown[1])
    second = verifier.follow(state)
    assert (second.previous and second.previous.tree_size, second.current.tree_size) == (100, N)
    assert json.loads(state.read_text()) == grown[1]
    again = _cli(live_server, "follow", "--state", str(state))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"verified": True, "from": N, "to": N}


def test_a_rewritten_stored_hash_is_caught_by_the_consistency_proof(
    verifier: LedgerVerifier, live_server: str, container: Container, grown: Grown, tmp_path: Path
) -> None:
    state = tmp_path / "head.json"
    verifier.follow(state)
    saved = state.read_text()
    # Leaves 0-63 rewritten: the subtree's stored hash changed, a new head signed.
    overwrite_stored_hash(container.engine, stored_hash_index(6, 0), b"\x07" * 32)
    store_head(container.engine, grown[1])
    with pytest.raises(VerificationFailed, match="first root"):
        verifier.follow(state)
    assert state.read_text() == saved  # the evidence stays
    ran = _cli(live_server, "follow", "--state", str(state))
    assert ran.returncode == 1 and "verification failed" in ran.stderr


def test_a_forked_log_is_caught(
    verifier: LedgerVerifier, container: Container, grown: Grown, tmp_path: Path
) -> None:
    state = tmp_path / "head.json"
    verifier.follow(state)
    clear_ledger(container.engine)
    entries = [entry_bytes(n) for n in range(N)]
    entries[5] = entry_bytes(9_999)  # one old entry replaced, every head signed anew
    fill_ledger(container.engine, entries, container.signer, signed_sizes=(100, N))
    with pytest.raises(VerificationFailed):
        verifier.follow(state)


def test_a_shrunk_log_or_a_second_root_for_a_size_is_caught(
    verifier: LedgerVerifier, container: Container, grown: Grown, tmp_path: Path
) -> None:
    state = tmp_path / "head.json"
    store_head(container.engine, grown[1])
    verifier.follow(state)
    with container.engine.begin() as conn:
        conn.execute(ledger_tree_heads.delete().where(ledger_tree_heads.c.tree_size == N))
    with pytest.raises(VerificationFailed, match="shrank"):
        verifier.follow(state)
    other = sign_head(container.signer, TreeHead(N, b"\x01" * 32, 1_764_000_001_000))
    store_head(container.engine, other)
    with pytest.raises(VerificationFailed, match="two different roots"):
        verifier.follow(state)


def test_a_forged_tree_head_signature_is_caught(
    verifier: LedgerVerifier, live_server: str, container: Container, grown: Grown, tmp_path: Path
) -> None:
    state = tmp_path / "head.json"
    verifier.follow(state)
    kid = container.signer.jwks()["keys"][0]["kid"]
    forger = AnswerSigner({kid: Ed25519PrivateKey.generate()}, kid)  # the right kid, not its key
    try:
        forged = sign_head(forger, TreeHead(N, bytes.fromhex(grown[1]["root_hash"]), 1))
    finally:
        forger.close()
    store_head(container.engine, forged)
    with pytest.raises(VerificationFailed, match="signature does not hold"):
        verifier.follow(state)
    assert _cli(live_server, "tree-head").returncode == 1


def test_a_tree_head_under_an_unknown_key_is_caught(
    verifier: LedgerVerifier, container: Container, grown: Grown
) -> None:
    stranger = AnswerSigner({"unknown-kid": Ed25519PrivateKey.generate()}, "unknown-kid")
    try:
        store_head(container.engine, sign_head(stranger, TreeHead(N, b"\x02" * 32, 1)))
    finally:
        stranger.close()
    with pytest.raises(VerificationFailed, match="unknown key"):
        verifier.tree_head()
