"""The compact certificate token of DESIGN §6.1, made and opened in one pure module that
the server and the offline ``ctplhub cert verify`` share, so the two cannot drift.

``token = base64url(JCS(certificate without signature)) + "." + base64url(signature)``,
both without padding. The signature is the §3.1 rule's (Ed25519 over the JCS bytes), so
the certificate in an answer, ``{..., "signature": {"alg", "kid", "value"}}``, verifies
with ``verify_signed`` like any signed answer, and the token carries the same bytes.

Opening is strict about form and lenient about nothing: a token that is not two
base64url parts, whose body is not a JSON object of exactly the certificate's fields as
strings, or whose signature is not 64 bytes, is ``400 invalid_token``; a well-formed token
is then checked against the key its ``kid`` names, and an unknown kid is simply invalid.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ctplhub.domain.errors import ValidationFailed
from ctplhub.security.answer_signing import (
    AnswerSigner,
    canonical_json,
    public_keys_of,
)
from ctplhub.services.certificates import (
    CERTIFICATE_FIELDS,
    Certificate,
    SealedCertificate,
)

MAX_TOKEN_CHARS = 2048
"""A token of ours is ~450 characters; anything far longer is not one (and is not
decoded)."""
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_SIGNATURE_BYTES = 64


def invalid_token(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_token")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str, part: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise invalid_token(f"the token's {part} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise invalid_token(f"the token's {part} is not unpadded base64url") from None


def make_token(message: bytes, signature: bytes) -> str:
    return f"{_b64url(message)}.{_b64url(signature)}"


def parse_token(token: object) -> tuple[Certificate, bytes]:
    """The certificate and raw signature a token carries, or ``invalid_token``."""
    if not isinstance(token, str) or not token:
        raise invalid_token("token must be a non-empty string")
    token = token.strip()  # a pasted token often brings a line end along
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid_token(f"a certificate token is at most {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 2:
        raise invalid_token("a certificate token is two base64url parts joined by a dot")
    body = _b64url_decode(parts[0], "body")
    signature = _b64url_decode(parts[1], "signature")
    if len(signature) != _SIGNATURE_BYTES:
        raise invalid_token("the token's signature is not an Ed25519 signature")
    try:
        fields: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_token("the token's body is not JSON") from None
    if (
        not isinstance(fields, dict)
        or set(fields) != set(CERTIFICATE_FIELDS)
        or not all(isinstance(value, str) for value in fields.values())
    ):
        raise invalid_token("the token's body is not a certificate")
    return Certificate(**fields), signature


class CertificateSeal:
    """Implements ``services.certificates.CertificateSealing``: seals with ``sign`` under
    ``active_kid`` (the server's signer), opens against ``public_keys`` (the signer's, or a
    JWKS for an offline check, which then cannot seal)."""

    def __init__(
        self,
        public_keys: Callable[[], Mapping[str, Ed25519PublicKey]],
        *,
        sign: Callable[[bytes], bytes] | None = None,
        active_kid: str | None = None,
    ) -> None:
        self._public_keys = public_keys
        self._sign = sign
        self._active_kid = active_kid

    @classmethod
    def for_signer(cls, signer: AnswerSigner) -> CertificateSeal:
        """Seals under the signer's active key; opens against every key it publishes."""
        return cls(signer.public_keys, sign=signer.sign_message, active_kid=signer.active_kid)

    @classmethod
    def from_jwks(cls, jwks: Any) -> CertificateSeal:
        """For checking only, against a JWKS document (``/.well-known/ctplhub-keys.json``)."""
        keys = public_keys_of(jwks)
        return cls(lambda: keys)

    @property
    def active_kid(self) -> str:
        if self._active_kid is None:
            raise RuntimeError("this CertificateSeal only verifies: it holds no signing key")
        return self._active_kid

    def seal(self, certificate: Certificate) -> SealedCertificate:
        if self._sign is None or certificate.kid != self._active_kid:
            raise RuntimeError("a certificate is sealed under the active kid it names")
        message = canonical_json(certificate.body())
        signature = self._sign(message)
        return SealedCertificate(
            certificate, base64.b64encode(signature).decode("ascii"), make_token(message, signature)
        )

    def open(self, token: object) -> tuple[SealedCertificate, bool]:
        certificate, signature = parse_token(token)
        assert isinstance(token, str)  # parse_token refused anything else
        sealed = SealedCertificate(
            certificate, base64.b64encode(signature).decode("ascii"), token.strip()
        )
        key = self._public_keys().get(certificate.kid)
        if key is None:
            return sealed, False
        try:
            key.verify(signature, canonical_json(certificate.body()))
        # ValueError/TypeError: text JCS cannot encode (a lone surrogate) signs nothing.
        except (InvalidSignature, ValueError, TypeError):
            return sealed, False
        return sealed, True
