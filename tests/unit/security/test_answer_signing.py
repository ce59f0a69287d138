import asyncio
import base64
import json

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.security.answer_signing import AnswerSigner, canonical_json, verify_signed

ANSWER = {
    "answer_id": "a-1",
    "plate": "苏E·12345",
    "status": "RENEWED",
    "covered": True,
    "days_to_expiry": 287,
    "lapsed_since": None,
    "flags": {"duplicate_coverage": False, "gaps": []},
    "sources": [{"insurer_code": "PICC", "stale": False}],
}


@pytest.fixture
def signer() -> AnswerSigner:
    keys = {
        "sig-20261125-1a2b3c4d": Ed25519PrivateKey.generate(),
        "sig-20250101-00000000": Ed25519PrivateKey.generate(),
    }
    return AnswerSigner(keys, "sig-20261125-1a2b3c4d")


def test_canonical_json_is_jcs() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )


def test_sign_then_verify(signer: AnswerSigner) -> None:
    signed = signer.sign(ANSWER)
    assert signed["signature"]["alg"] == "Ed25519"
    assert signed["signature"]["kid"] == "sig-20261125-1a2b3c4d"
    assert verify_signed(signed, signer.jwks())
    assert "signature" not in ANSWER  # the input is not modified


def test_signature_is_over_jcs_without_signature(signer: AnswerSigner) -> None:
    signed = signer.sign(ANSWER)
    jwk = next(k for k in signer.jwks()["keys"] if k["kid"] == signed["signature"]["kid"])
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "="))
    public.verify(base64.b64decode(signed["signature"]["value"]), canonical_json(ANSWER))


def test_resigning_replaces_an_old_signature(signer: AnswerSigner) -> None:
    stale = {**ANSWER, "signature": {"alg": "Ed25519", "kid": "x", "value": "AAAA"}}
    signed = signer.sign(stale)
    assert signed["signature"]["kid"] == "sig-20261125-1a2b3c4d"
    assert verify_signed(signed, signer.jwks())


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update(status="LAPSED"),
        lambda a: a.update(days_to_expiry=288),
        lambda a: a.update(covered=False),
        lambda a: a.update(extra="x"),
        lambda a: a.pop("lapsed_since"),
        lambda a: a["flags"].update(duplicate_coverage=True),
        lambda a: a["sources"][0].update(insurer_code="CPIC"),
        lambda a: a["signature"].update(kid="sig-20250101-00000000"),
        lambda a: a["signature"].update(alg="EdDSA"),
        lambda a: a["signature"].update(value="not base64!"),
        lambda a: a.pop("signature"),
    ],
)
def test_any_alteration_fails(signer: AnswerSigner, change: object) -> None:
    signed = json.loads(json.dumps(signer.sign(ANSWER)))  # deep copy, as a relying party sees it
    change(signed)  # type: ignore[operator]
    assert not verify_signed(signed, signer.jwks())


def test_key_order_and_whitespace_are_irrelevant(signer: AnswerSigner) -> None:
    signed = signer.sign(ANSWER)
    reordered = json.loads(
        json.dumps(dict(reversed(list(signed.items()))), indent=4, ensure_ascii=True)
    )
    assert list(reordered) != list(signed)
    assert verify_signed(reordered, signer.jwks())
    # Signing the same content in another order gives a signature over the same bytes.
    other = signer.sign(dict(reversed(list(ANSWER.items()))))
    assert verify_signed({**signed, "signature": other["signature"]}, signer.jwks())


def test_jwks_shape(signer: AnswerSigner) -> None:
    jwks = signer.jwks()
    assert sorted(k["kid"] for k in jwks["keys"]) == [
        "sig-20250101-00000000",
        "sig-20261125-1a2b3c4d",
    ]
    for key in jwks["keys"]:
        assert set(key) == {"kty", "crv", "kid", "x", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == (
            "OKP",
            "Ed25519",
            "sig",
            "EdDSA",
        )
        assert "=" not in key["x"] and "+" not in key["x"] and "/" not in key["x"]
        assert len(key["x"]) == 43  # 32 bytes, base64url without padding


def test_jwks_x_is_the_raw_public_key() -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    [key] = AnswerSigner({"k": private}, "k").jwks()["keys"]
    assert base64.urlsafe_b64decode(key["x"] + "=") == raw


def test_unknown_kid_or_other_keys_fail(signer: AnswerSigner) -> None:
    signed = signer.sign(ANSWER)
    assert not verify_signed(signed, {"keys": []})
    assert not verify_signed(signed, {})
    impostor = AnswerSigner(
        {"sig-20261125-1a2b3c4d": Ed25519PrivateKey.generate()}, "sig-20261125-1a2b3c4d"
    )
    assert not verify_signed(signed, impostor.jwks())
    assert not verify_signed(signed, {"keys": ["junk"]})


def test_retired_key_still_verifies() -> None:
    keys = {
        "sig-20250101-00000000": Ed25519PrivateKey.generate(),
        "sig-20261125-1a2b3c4d": Ed25519PrivateKey.generate(),
    }
    old = AnswerSigner(keys, "sig-20250101-00000000").sign(ANSWER)
    assert verify_signed(old, AnswerSigner(keys, "sig-20261125-1a2b3c4d").jwks())


def test_active_kid_must_exist() -> None:
    with pytest.raises(ValueError):
        AnswerSigner({"a": Ed25519PrivateKey.generate()}, "b")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_fast_canonical_json_is_byte_for_byte_rfc8785(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_libsodium_signs_the_bytes_openssl_would(signer: AnswerSigner) -> None:
    """Signing goes through PyNaCl for speed; Ed25519 is deterministic, so the signature
    must be exactly the one ``cryptography`` (OpenSSL) makes with the same key."""
    key = signer._keys[signer._active_kid]
    for message in (b"", b"{}", canonical_json(ANSWER), bytes(range(256)) * 9):
        assert signer._sign_bytes(message) == key.sign(message)


def test_signed_text_is_the_signed_object(signer: AnswerSigner) -> None:
    for obj in (ANSWER, {}):
        text = signer.signed_json(obj)
        parsed = json.loads(text)
        assert {k: v for k, v in parsed.items() if k != "signature"} == obj
        assert parsed == signer.sign(obj)
        assert verify_signed(parsed, signer.jwks())
        assert text.startswith(canonical_json(obj)[:-1])  # the very bytes signed


def test_signed_text_off_the_loop_is_the_signed_object(signer: AnswerSigner) -> None:
    async def many(obj: dict[str, object]) -> list[bytes]:
        return list(
            await asyncio.gather(
                *(signer.signed_canonical_json_off_loop(obj) for _ in range(25)),
                *(signer.signed_json_off_loop(obj) for _ in range(25)),
            )
        )

    try:
        for obj in (ANSWER, {}):
            texts = asyncio.run(many(obj))
            assert len(set(texts)) == 1  # deterministic signatures, whatever the batching
            assert texts[0] == signer.signed_json(obj)
        assert asyncio.run(many(ANSWER)) == asyncio.run(many(ANSWER))  # new loops are served
    finally:
        signer.close()
    assert not signer._process._children
