"""Unsubscribe tokens (DESIGN §7): every reminder carries a link that ends its
subscription, so the token must be made again for each message, yet never be stored.

A token is ``base64url(HMAC-SHA256(key, "unsubscribe|" + salt))`` (no padding): the
subscription keeps only its random 16-byte salt and the token's SHA-256, which checks a token a
caller presents without the key. The key is derived from the deployment's blind-index
key file, which every process holds; a stolen database alone makes no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


class UnsubscribeTokens:
    def __init__(self, deployment_key: bytes) -> None:
        self._key = hmac.digest(deployment_key, b"ctplhub unsubscribe tokens v1", "sha256")

    def token(self, salt: bytes) -> str:
        mac = hmac.digest(self._key, b"unsubscribe|" + salt, "sha256")
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    @staticmethod
    def new_salt() -> bytes:
        return os.urandom(16)

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
