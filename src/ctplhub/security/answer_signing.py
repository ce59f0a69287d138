"""Ed25519 signatures on what the platform publishes (DESIGN §3.1).

Coverage answers, ledger tree heads and certificates are signed so that a police officer's
app or a court can check them later without trusting the transport. The rule is one rule
for all of them: `signature.value` is the base64 Ed25519 signature over the RFC 8785
canonical JSON (JCS) of the object without its `signature` field. JCS makes the signed
bytes independent of key order and whitespace, so a relying party may re-serialise freely.
Public keys are published as a JWKS (RFC 8037 OKP/Ed25519), one entry per kid, retired
keys included so old answers stay verifiable.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from nacl.bindings import crypto_sign
from nacl.signing import SigningKey

from ctplhub.security.signing_process import SigningProcess

ALG = "Ed25519"


_SAFE_INT = 2**53


def _plain(obj: Any) -> bool:
    """True when JCS and sorted compact JSON give the same bytes: no floats (JCS has
    its own number format) and only ASCII keys (JCS sorts by UTF-16 code units).

    A walk with a stack rather than recursion: it runs for every answer signed."""
    pending = [obj]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is dict:
            try:
                ascii_keys = "".join(value).isascii()
            except TypeError:  # a key that is not a string
                return False
            if not ascii_keys:
                return False
            pending.extend(value.values())
        elif kind is list:
            pending.extend(value)
        elif kind is int:
            if not -_SAFE_INT < value < _SAFE_INT:  # JCS refuses what a double cannot hold
                return False
        else:
            return False
    return True


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes of `obj`: the only serialisation that is ever signed.

    Answers hold only strings, integers, booleans and nulls under ASCII keys; for such
    values orjson with sorted keys writes exactly the JCS bytes (same escapes, same
    order) forty times faster than the general pure-Python implementation, which still
    handles everything else. A property test holds the two equal.
    """
    if _plain(obj):
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(obj)


def _unsigned(obj: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in obj.items() if name != "signature"}


def plain_canonical_json(obj: dict[str, Any]) -> bytes:
    """JCS of an object its builder guarantees plain (strings, booleans, nulls, integers
    within ±2**53, ASCII keys): the fast path of :func:`canonical_json` without the walk
    that checks it. The answers the presenters build are signed through it
    (``signed_json``); a property test holds it equal to ``rfc8785`` for every
    answer they can build."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


class AnswerSigner:
    """Signs with the active key and publishes the public half of every key it holds.

    Signing goes through libsodium (PyNaCl): 22 µs a signature against 34-39 µs
    through OpenSSL on the first machine, on the hottest path of the API
    (docs/PERFORMANCE.md); on the API's paths in the signer process
    (``security/signing_process.py``), elsewhere on the calling thread. Ed25519 signatures are
    deterministic, so both libraries give the same bytes; a test holds them equal.
    Verification and the JWKS stay with ``cryptography``.
    """

    def __init__(
        self,
        keys: dict[str, Ed25519PrivateKey],
        active_kid: str,
        *,
        published: Callable[[], dict[str, Ed25519PublicKey]] | None = None,
    ) -> None:
        """``published``: the public keys in the key file now, when it may change while
        the process runs (``keys rotate-signing``): the JWKS and certificate checks then
        know a kid that a restarted process already signs with (docs/DECISIONS.md)."""
        if active_kid not in keys:
            raise ValueError(f"active kid {active_kid!r} is not among the keys")
        self._keys = dict(keys)
        self._own_public = {kid: key.public_key() for kid, key in keys.items()}
        self._published = published
        self._active_kid = active_kid
        seed = keys[active_kid].private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        secret = SigningKey(seed)._signing_key  # libsodium's 64-byte form of the seed
        self._sign_bytes: Callable[[bytes], bytes] = lambda message: crypto_sign(message, secret)[
            :64
        ]
        self._process = SigningProcess(seed, self._sign_bytes)

    @property
    def active_kid(self) -> str:
        """The kid new signatures are made under (a certificate names it inside its body)."""
        return self._active_kid

    def sign_message(self, message: bytes) -> bytes:
        """The raw 64-byte signature of ``message`` under the active key: for a certificate's
        compact token (DESIGN §6.1), whose body already names the kid."""
        return self._sign_bytes(message)

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every key's public half by kid, retired ones included, and those the key file
        holds now (a rotation since this process started)."""
        if self._published is None:
            return dict(self._own_public)
        return {**self._own_public, **self._published()}

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A new dict: `obj` minus any old signature, plus a signature over the rest."""
        unsigned = _unsigned(obj)
        return {**unsigned, "signature": self._signature(canonical_json(unsigned))}

    def signed_json(self, obj: dict[str, Any]) -> bytes:
        """The JSON text of `obj` signed, here and now. For an object its builder
        guarantees plain and without a ``signature`` field: the text is the canonical
        bytes that were signed, with the signature appended as the last member, which
        saves building and serialising the object a second time on the API's hottest
        path. On the event loop, use :meth:`signed_json_off_loop`."""
        message = plain_canonical_json(obj)
        return self._with_signature(message, self._sign_bytes(message))

    async def signed_json_off_loop(self, obj: dict[str, Any]) -> bytes:
        """:meth:`signed_json`, the signature made by the signer process
        (``security/signing_process.py``): an owner's answer costs the event loop ~8 µs
        of hand-over instead of a 50-65 µs signature (docs/PERFORMANCE.md §16)."""
        message = plain_canonical_json(obj)
        return self._with_signature(message, await self._process.sign(message))

    async def signed_canonical_json_off_loop(self, obj: dict[str, Any]) -> bytes:
        """Like :meth:`signed_json_off_loop`, for an object nobody vouches plain (a bulk
        verify answer carries error details): its JCS comes from :func:`canonical_json`,
        which checks and falls back to ``rfc8785``."""
        message = canonical_json(_unsigned(obj))
        return self._with_signature(message, await self._process.sign(message))

    def close(self) -> None:
        """Stop the signer processes (the app is stopping)."""
        self._process.close()

    def _with_signature(self, message: bytes, value: bytes) -> bytes:
        signature = orjson.dumps(self._signature_object(value))
        if message == b"{}":
            return b'{"signature":' + signature + b"}"
        return message[:-1] + b',"signature":' + signature + b"}"

    def _signature(self, message: bytes) -> dict[str, str]:
        return self._signature_object(self._sign_bytes(message))

    def _signature_object(self, value: bytes) -> dict[str, str]:
        return {"alg": ALG, "kid": self._active_kid, "value": base64.b64encode(value).decode()}

    def jwks(self) -> dict[str, Any]:
        """The document served at /.well-known/ctplhub-keys.json."""
        return jwks_of(self.public_keys())


def jwks_of(public_keys: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The JWKS (RFC 8037) of ``public_keys``: one OKP/Ed25519 entry per kid."""
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "kid": kid,
                "x": _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw)),
                "use": "sig",
                "alg": "EdDSA",
            }
            for kid, key in public_keys.items()
        ]
    }


def public_keys_of(jwks: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document by kid; entries that are not OKP/Ed25519 keys
    with a kid are skipped, so a relying party's copy may hold other keys too."""
    found: dict[str, Ed25519PublicKey] = {}
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    for jwk in keys if isinstance(keys, list) else ():
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        kid, x = jwk.get("kid"), jwk.get("x")
        if not isinstance(kid, str) or not isinstance(x, str):
            continue
        try:
            found[kid] = Ed25519PublicKey.from_public_bytes(_b64url_decode(x))
        except ValueError:
            continue
    return found


def verify_signed(obj: dict[str, Any], jwks: dict[str, Any]) -> bool:
    """What a relying party does: find the kid in the JWKS and check the signature.

    Any malformed input (missing fields, bad base64, wrong key type, values JCS cannot
    encode) is a failed check, never an exception.
    """
    try:
        signature = obj["signature"]
        if signature["alg"] != ALG:
            return False
        jwk = next(
            key
            for key in jwks["keys"]
            if key.get("kid") == signature["kid"]
            and key.get("kty") == "OKP"
            and key.get("crv") == "Ed25519"
        )
        public_key = Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))
        value = base64.b64decode(signature["value"], validate=True)
        public_key.verify(value, canonical_json(_unsigned(obj)))
    # ValueError also covers binascii.Error and rfc8785.CanonicalizationError.
    except (InvalidSignature, StopIteration, KeyError, TypeError, ValueError, AttributeError):
        return False
    return True


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
