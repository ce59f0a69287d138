"""The standalone verifier's checks without a server: a tree head the platform signs
(through its own JCS fast path) verifies under the verifier's ``rfc8785``; any change to
it does not; a rotated key is fetched again by ``kid``; commitments open with their salt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.ledger import TreeHead, commitment
from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.verifier import (
    LedgerVerifier,
    VerificationFailed,
    commitment_matches,
    parse_jwks,
    verify_signed_tree_head,
)


@pytest.fixture(scope="module")
def signer() -> Iterator[AnswerSigner]:
    made = AnswerSigner({"k1": Ed25519PrivateKey.generate()}, "k1")
    yield made
    made.close()


def _head(signer: AnswerSigner, size: int = 5, stamp: int = 1_764_000_000_000) -> dict[str, Any]:
    return signer.sign(dict(TreeHead(size, bytes(range(32)), stamp).to_signable()))


@given(
    size=st.integers(0, 2**53 - 1),
    stamp=st.integers(0, 2**53 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_a_head_the_platform_signs_verifies(
    signer: AnswerSigner, size: int, stamp: int, root: bytes
) -> None:
    signed = signer.sign(dict(TreeHead(size, root, stamp).to_signable()))
    assert verify_signed_tree_head(signed, parse_jwks(signer.jwks())) == TreeHead(size, root, stamp)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h: {**h, "tree_size": h["tree_size"] + 1}, "does not hold"),
        (lambda h: {**h, "timestamp": 0}, "does not hold"),
        (lambda h: {**h, "extra": 1}, "does not hold"),
        (lambda h: {**h, "signature": {**h["signature"], "alg": "RS256"}}, "no Ed25519"),
        (lambda h: {**h, "signature": {**h["signature"], "kid": "k9"}}, "unknown key"),
        (lambda h: {**h, "signature": {**h["signature"], "value": "%%%"}}, "does not hold"),
        (lambda h: {k: v for k, v in h.items() if k != "signature"}, "no Ed25519"),
    ],
)
def test_any_change_is_refused(signer: AnswerSigner, change: Any, reason: str) -> None:
    with pytest.raises(VerificationFailed, match=reason):
        verify_signed_tree_head(change(_head(signer)), parse_jwks(signer.jwks()))


def test_a_rotated_key_is_fetched_again_by_kid(signer: AnswerSigner) -> None:
    newer = AnswerSigner({"k2": Ed25519PrivateKey.generate()}, "k2")
    try:
        published = [signer.jwks()]
        head = _head(newer, 9)

        def answer(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/.well-known/ctplhub-keys.json":
                return httpx.Response(200, json=published[-1])
            return httpx.Response(200, json=head)

        checker = LedgerVerifier("http://hub.test", transport=httpx.MockTransport(answer))
        assert set(checker.keys()) == {"k1"}
        published.append({"keys": signer.jwks()["keys"] + newer.jwks()["keys"]})
        assert checker.tree_head()[0].tree_size == 9
        checker.close()
    finally:
        newer.close()


def test_commitments_open_with_their_salt() -> None:
    salt = bytes(range(16))
    entry = {"plate": commitment(salt, "苏E12345")}
    assert commitment_matches(entry, "plate", "苏E12345", salt.hex())
    assert not commitment_matches(entry, "plate", "苏E12346", salt.hex())
    assert not commitment_matches(entry, "vin", "苏E12345", salt.hex())
