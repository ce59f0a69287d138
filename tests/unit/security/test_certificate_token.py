"""The compact certificate token of DESIGN §6.1 (``security/certificate_token.py``): what
it is made of, that it opens to what was sealed, and that anything else is either an
invalid signature or ``invalid_token``, never another exception."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.errors import ValidationFailed
from ctplhub.security.answer_signing import AnswerSigner, verify_signed
from ctplhub.security.certificate_token import CertificateSeal, make_token, parse_token
from ctplhub.services.certificates import Certificate

ACTIVE = "sig-20261201-aaaaaaaa"
RETIRED = "sig-20250101-bbbbbbbb"


@pytest.fixture
def signer() -> AnswerSigner:
    keys = {ACTIVE: Ed25519PrivateKey.generate(), RETIRED: Ed25519PrivateKey.generate()}
    return AnswerSigner(keys, ACTIVE)


def certificate(kid: str = ACTIVE) -> Certificate:
    return Certificate(
        cert_id="3f2b6c1e-1a2b-4c3d-8e9f-0123456789ab",
        kid=kid,
        plate="苏E·12345",
        vin_masked="LSVAU218XN2******",
        insurer_code="PICC",
        policy_no_masked="…0001",
        coverage_start="2026-03-01T00:00:00+08:00",
        coverage_end="2027-03-01T00:00:00+08:00",
        issued_at="2026-11-25T10:00:00+08:00",
    )


def test_the_token_is_jcs_and_the_raw_signature_in_unpadded_base64url(
    signer: AnswerSigner,
) -> None:
    sealed = CertificateSeal.for_signer(signer).seal(certificate())

    head, tail = sealed.token.split(".")
    message = rfc8785.dumps(certificate().body())
    assert base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)) == message
    raw = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
    assert raw == base64.b64decode(sealed.signature)
    assert "=" not in sealed.token
    assert len(sealed.token) < 600  # one QR code
    signed = {
        **certificate().body(),
        "signature": {"alg": "Ed25519", "kid": ACTIVE, "value": sealed.signature},
    }
    assert verify_signed(signed, signer.jwks())  # the §3.1 rule, as any answer


def test_a_token_opens_to_what_was_sealed_offline_with_the_jwks(signer: AnswerSigner) -> None:
    sealed = CertificateSeal.for_signer(signer).seal(certificate())

    opened, valid = CertificateSeal.from_jwks(signer.jwks()).open(sealed.token + "\n")

    assert valid
    assert opened == sealed


def test_a_retired_key_still_verifies_and_an_unknown_kid_does_not(signer: AnswerSigner) -> None:
    retired = AnswerSigner(dict(signer._keys), RETIRED)
    old = CertificateSeal.for_signer(retired).seal(certificate(RETIRED))
    seal = CertificateSeal.for_signer(signer)

    assert seal.open(old.token)[1]
    stranger = AnswerSigner({"sig-x": Ed25519PrivateKey.generate()}, "sig-x")
    foreign = CertificateSeal.for_signer(stranger).seal(certificate("sig-x"))
    assert seal.open(foreign.token)[1] is False


@pytest.mark.parametrize(
    "change",
    [
        {"coverage_end": "2030-03-01T00:00:00+08:00"},
        {"plate": "苏E·12346"},
        {"kid": RETIRED},
        {"insurer_code": "CPIC"},
    ],
)
def test_any_change_to_the_body_breaks_the_signature(
    signer: AnswerSigner, change: dict[str, str]
) -> None:
    sealed = CertificateSeal.for_signer(signer).seal(certificate())
    forged = replace(certificate(), **change)
    token = make_token(rfc8785.dumps(forged.body()), base64.b64decode(sealed.signature))

    assert CertificateSeal.for_signer(signer).open(token)[1] is False


def test_sealing_under_another_kid_than_the_active_one_is_refused(signer: AnswerSigner) -> None:
    with pytest.raises(RuntimeError):
        CertificateSeal.for_signer(signer).seal(certificate(RETIRED))
    with pytest.raises(RuntimeError):
        CertificateSeal.from_jwks(signer.jwks()).seal(certificate())


@given(st.one_of(st.text(max_size=700), st.binary(max_size=300).map(lambda b: b.hex())))
def test_any_text_is_a_certificate_or_invalid_token_never_another_error(text: str) -> None:
    try:
        parse_token(text)
    except ValidationFailed as error:
        assert error.code == "invalid_token"


@given(
    st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=10),
    st.binary(min_size=0, max_size=80),
)
def test_any_json_body_and_signature_bytes_never_raise_but_invalid_token(
    body: dict[str, str], signature: bytes
) -> None:
    token = make_token(rfc8785.dumps(body), signature)
    keys = {ACTIVE: Ed25519PrivateKey.generate()}
    try:
        _, valid = CertificateSeal.for_signer(AnswerSigner(keys, ACTIVE)).open(token)
    except ValidationFailed as error:
        assert error.code == "invalid_token"
    else:
        assert valid is False
