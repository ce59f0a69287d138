"""Replay protection shared across processes: nonces in the database or in Redis (§4, §5.1)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import redis

from ctplhub.bootstrap import Container
from ctplhub.security.nonces import RedisNonceStore
from ctplhub.store.nonces import SqlNonceStore


def test_sql_nonce_store_accepts_a_nonce_once(container: Container) -> None:
    store = SqlNonceStore(container.engine)
    now = datetime.now(UTC)
    nonce = secrets.token_urlsafe(18)
    assert store.remember("PICC-1", nonce, now, 300) is True
    assert store.remember("PICC-1", nonce, now + timedelta(seconds=10), 300) is False
    # Nonces are per key: another key may use the same random string.
    assert store.remember("PINGAN-1", nonce, now, 300) is True


def test_redis_nonce_store_accepts_a_nonce_once_and_forgets_it_later(redis_url: str) -> None:
    store = RedisNonceStore(redis_url)
    now = datetime.now(UTC)
    nonce = secrets.token_urlsafe(18)
    assert store.remember("PICC-1", nonce, now, 300) is True
    assert store.remember("PICC-1", nonce, now, 300) is False
    ttl = redis.Redis.from_url(redis_url).ttl(f"ctplhub:nonce:PICC-1:{nonce}")
    assert 300 < ttl <= 600
