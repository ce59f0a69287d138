"""Insurer request signing (DESIGN §5.1): the HMAC both sides compute.

The server and the shipped client (`ctplhub.client`) import these same functions, so the
string that is signed can never drift between them. Everything here is pure and uses the
standard library only: the clock and the nonce can be passed in, which keeps tests exact.

The signed string binds the method, the request target as sent (query string included,
so a signed `?status=open` cannot be replayed as `?status=closed`), the timestamp, the
nonce and a SHA-256 of the body bytes::

    METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA256(body))
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER_KEY = "X-CTPL-Key"
HEADER_TIMESTAMP = "X-CTPL-Timestamp"
HEADER_NONCE = "X-CTPL-Nonce"
HEADER_SIGNATURE = "X-CTPL-Signature"

MAX_SKEW_S = 300
"""Clock skew tolerated between client and server; also how long nonces must be kept."""

MIN_NONCE_LEN = 16


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes that are HMAC'd; the body enters only through its hash."""
    return _string_to_sign(method, path, timestamp, nonce, hashlib.sha256(body).digest())


def _string_to_sign(method: str, path: str, timestamp: str, nonce: str, digest: bytes) -> bytes:
    return "\n".join((method.upper(), path, timestamp, nonce, digest.hex())).encode("utf-8")


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `string_to_sign` under the key's secret."""
    message = string_to_sign(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_matches(
    secret: str,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    signature: str,
) -> bool:
    """Check a received signature in constant time, so timing leaks nothing about it."""
    return digest_signature_matches(
        secret, method, path, timestamp, nonce, hashlib.sha256(body).digest(), signature
    )


def digest_signature_matches(
    secret: str,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body_digest: bytes,
    signature: str,
) -> bool:
    """As ``signature_matches``, given the body's SHA-256 digest: a large batch is hashed
    while it streams to disk and never held in memory whole."""
    message = _string_to_sign(method, path, timestamp, nonce, body_digest)
    expected = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    # Compare bytes: compare_digest on str raises TypeError for non-ASCII, and a hostile
    # header must give False, not a 500.
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))


def timestamp_fresh(timestamp: str, now_s: float) -> bool:
    """True when `timestamp` is integer unix seconds within MAX_SKEW_S of `now_s`."""
    # int() would also accept " 5", "+5", "1_000" and non-ASCII digits; only plain ASCII
    # digits are a timestamp, so two parsers can never disagree on what was signed. More
    # than 12 digits is no time of this era, and would overflow the float subtraction
    # (or, past 4,300 digits, int() itself): a 500 for anyone who knows a key id.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    return abs(now_s - int(timestamp)) <= MAX_SKEW_S


def signed_headers(
    key_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    now_s: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """All four authentication headers for one request, ready to send."""
    timestamp = str(int(time.time() if now_s is None else now_s))
    # 18 random bytes give 24 URL-safe characters, above MIN_NONCE_LEN.
    nonce_value = secrets.token_urlsafe(18) if nonce is None else nonce
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce_value,
        HEADER_SIGNATURE: sign(secret, method, path, timestamp, nonce_value, body),
    }
