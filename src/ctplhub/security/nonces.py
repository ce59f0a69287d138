"""Replay protection shared by every API process through Redis (DESIGN §4, §5.1).

When Redis is unreachable or slow, ``remember`` raises (redis-py's ``ConnectionError`` or
``TimeoutError``): the signed request is refused ``503 storage_unavailable`` with
``Retry-After`` (``store/failures.py``), never let through unchecked. Nothing falls back
to another store: a nonce Redis remembered before it went down would be unknown there,
so a replay of it would pass.
"""

from __future__ import annotations

from datetime import datetime

import redis

# Redis sits next to the servers: a signed request waits at most this long for it.
TIMEOUT_S = 0.5


class RedisNonceStore:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )

    def remember(self, key_id: str, nonce: str, now: datetime, ttl_s: int) -> bool:
        # SET NX EX is atomic: exactly one of two concurrent requests wins the nonce.
        # Kept twice the skew window, like the SQL store, so a replay can never outlive it.
        return bool(self._redis.set(f"ctplhub:nonce:{key_id}:{nonce}", b"1", nx=True, ex=2 * ttl_s))
