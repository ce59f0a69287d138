"""Bearer tokens, insurer secrets and key ids.

Tokens are stored only as their SHA-256: they carry 256 bits of randomness, so a plain
hash (no salt, no slow KDF) cannot be reversed, and it lets a request's token be looked
up by an indexed equality. The prefix makes a leaked token recognisable (secret scanners,
logs) and says what kind of credential it is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token(prefix: str = "ctp") -> str:
    """A bearer token such as "ctp_<43 URL-safe characters>"; shown once, stored hashed."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_secret() -> str:
    """An insurer's HMAC signing secret (DESIGN §5.1), 256 random bits."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Lowercase hex SHA-256 of a token: the only form in which it is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_key_id(insurer_code: str) -> str:
    """A public key id such as "PICC-1a2b3c4d5e6f", sent in X-CTPL-Key; not a secret."""
    return f"{insurer_code}-{secrets.token_hex(6)}"


def new_session_id() -> str:
    """A staff page session id (the cookie's value), 256 random bits, stored hashed."""
    return secrets.token_urlsafe(32)


def csrf_token(secret: str) -> str:
    """The anti-forgery token of the forms of one session, derived from its secret id:
    a page may show it, since it does not reveal the id, and it needs no storage."""
    return hmac.new(secret.encode("utf-8"), b"ctplhub csrf v1", hashlib.sha256).hexdigest()
