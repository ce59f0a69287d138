"""How a reminder webhook is signed (docs/webhooks.md): the HMAC both sides compute.

Pure and standard library only, like ``security/request_signing.py``: the sender
(``notify/webhook.py``), the tests and any receiver written in Python import these same
functions, so the signed bytes cannot drift between them. The signed bytes bind the
attempt's timestamp, the message id (the receiver's idempotency key) and the exact body::

    TIMESTAMP "." MESSAGE_ID "." BODY

and the header carries ``v1=`` + lowercase hex HMAC-SHA256 under the subscription's
secret. Each subscription has its own secret, derived from a deployment key and the
subscription id (:func:`webhook_secret`): nothing secret is stored per row, one receiver
cannot forge messages to another, and the secret is shown to the owner once, when the
webhook subscription is made.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER_MESSAGE_ID = "X-CTPL-Message-Id"
HEADER_TIMESTAMP = "X-CTPL-Webhook-Timestamp"
HEADER_SIGNATURE = "X-CTPL-Webhook-Signature"
SCHEME = "v1"

MAX_SKEW_S = 300
"""How old (or how far ahead) a timestamp a receiver should accept."""

_SECRET_LABEL = b"ctplhub webhook secret v1\x00"


def webhook_secret(key: bytes, subscription_id: int) -> str:
    """A subscription's signing secret (``key``: ``bootstrap.webhook_signing_key``): 64 hex
    characters, which the receiver uses as the HMAC key's UTF-8 bytes."""
    message = _SECRET_LABEL + str(subscription_id).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_bytes(timestamp: str, message_id: str, body: bytes) -> bytes:
    return timestamp.encode("ascii") + b"." + message_id.encode("ascii") + b"." + body


def signature(secret: str, timestamp: str, message_id: str, body: bytes) -> str:
    """The header value: ``v1=<lowercase hex HMAC-SHA256>``."""
    digest = hmac.new(
        secret.encode("utf-8"), signed_bytes(timestamp, message_id, body), hashlib.sha256
    )
    return f"{SCHEME}={digest.hexdigest()}"


def signed_headers(secret: str, message_id: str, body: bytes, *, now_s: float) -> dict[str, str]:
    """The three headers of one attempt (a retry is signed again with its own time)."""
    timestamp = str(int(now_s))
    return {
        HEADER_MESSAGE_ID: message_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: signature(secret, timestamp, message_id, body),
    }


def verify(
    secret: str,
    *,
    timestamp: str,
    message_id: str,
    body: bytes,
    header: str,
    now_s: float,
    max_skew_s: int = MAX_SKEW_S,
) -> bool:
    """What a receiver does: a fresh timestamp and a matching ``v1`` signature (any of
    several comma-separated ones, so a future scheme can be sent beside this one)."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs(now_s - int(timestamp)) > max_skew_s:
        return False
    if not message_id.isascii():
        return False
    expected = signature(secret, timestamp, message_id, body).encode("ascii")
    return any(
        hmac.compare_digest(expected, candidate.strip().encode("utf-8"))
        for candidate in header.split(",")
    )
