"""Replay protection shared by every API process through Redis (DESIGN §4, §5.1)."""

from __future__ import annotations

from datetime import datetime

import redis


class RedisNonceStore:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)

    def remember(self, key_id: str, nonce: str, now: datetime, ttl_s: int) -> bool:
        # SET NX EX is atomic: exactly one of two concurrent requests wins the nonce.
        # Kept twice the skew window, like the SQL store, so a replay can never outlive it.
        return bool(self._redis.set(f"ctplhub:nonce:{key_id}:{nonce}", b"1", nx=True, ex=2 * ttl_s))
