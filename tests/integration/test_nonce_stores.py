"""Replay protection shared across processes: nonces in the database or in Redis (§4, §5.1)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import redis

from ctplhub.bootstrap import Container
from ctplhub.security.nonces import RedisNonceStore
from ctplhub.services.ports import NonceVerdict
from ctplhub.store.nonces import SqlNonceStore


def test_sql_nonce_store_accepts_a_nonce_once(container: Container) -> None:
    store = SqlNonceStore(container.engine)
    now = datetime.now(UTC)
    signed_at = int(now.timestamp())
    nonce = secrets.token_urlsafe(18)
    assert store.remember("PICC-1", nonce, now, 300, signed_at=signed_at) is NonceVerdict.NEW
    later = now + timedelta(seconds=10)
    assert store.remember("PICC-1", nonce, later, 300, signed_at=signed_at) is NonceVerdict.SEEN
    # Nonces are per key: another key may use the same random string.
    assert store.remember("PINGAN-1", nonce, now, 300, signed_at=signed_at) is NonceVerdict.NEW


def test_redis_nonce_store_accepts_a_nonce_once_and_forgets_it_later(redis_url: str) -> None:
    store = RedisNonceStore(redis_url)
    now = datetime.now(UTC)
    signed_at = int(time.time())
    nonce = secrets.token_urlsafe(18)
    assert store.remember("PICC-1", nonce, now, 300, signed_at=signed_at) is NonceVerdict.NEW
    assert store.remember("PICC-1", nonce, now, 300, signed_at=signed_at) is NonceVerdict.SEEN
    ttl = redis.Redis.from_url(redis_url).ttl(f"ctplhub:nonce:PICC-1:{nonce}")
    assert 300 < ttl <= 600
