"""The replay gap of a Redis that comes back empty, closed (DESIGN §5.1; docs/DECISIONS.md,
"Redis comes back empty"): Redis keeps nothing on disk, so after a restart or a flush
it no longer knows the nonces of requests it accepted. The first process to find the
marker ``MEMORY_SINCE`` missing writes the instant it did; for twice the skew window
after it, a request signed no later than that instant is refused ``401 stale_timestamp``
(a replay of one accepted before cannot be told from it), and one signed after it is
accepted. On a private ``redis-server`` the test restarts or flushes (never the shared
one)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ctplhub.bootstrap import build_app
from ctplhub.security.nonces import MEMORY_SINCE, RedisNonceStore
from ctplhub.services.ports import NonceVerdict
from ctplhub.store.tables import policy_events
from helpers import Clock, event
from redis_fixtures import EVENTS_PATH, container_on_redis, private_redis, signed_event

__all__ = ["private_redis"]  # a fixture

PATH = EVENTS_PATH


@pytest.mark.parametrize("loss", ["restart", "flushall"])
def test_a_request_accepted_before_redis_lost_its_memory_is_not_accepted_again(
    database_url: str, home: Path, clock: Clock, private_redis: tuple[int, Any], loss: str
) -> None:
    port, start = private_redis
    server = start()
    local = redis.Redis(port=port)
    container = container_on_redis(port, database_url, home, clock)
    try:
        with TestClient(build_app(container)) as http:
            key = container.insurers.add("PICC", "中国人民财产保险", actor="test")
            body = orjson.dumps(event(policy_no="REPLAY-1"))
            accepted = signed_event(key.key_id, key.secret, body)
            assert http.post(PATH, content=body, headers=accepted).status_code == 201
            # While Redis remembers, the replay is refused on its nonce.
            again = http.post(PATH, content=body, headers=accepted)
            assert again.json()["error"]["code"] == "replayed_nonce"

            if loss == "restart":
                server.terminate()
                server.wait(5)
                start()
            else:
                local.flushall()
            assert local.get(MEMORY_SINCE) is None  # the nonce went with everything else

            replay = http.post(PATH, content=body, headers=accepted)
            assert replay.status_code == 401
            assert replay.json()["error"]["code"] == "stale_timestamp"
            since = local.get(MEMORY_SINCE)
            assert since is not None
            # Kept as long as the memory it vouches for: no expiry.
            assert local.ttl(MEMORY_SINCE) == -1
            with container.engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(policy_events)).scalar()
            assert stored == 1

            # A new request signed after the memory began is accepted, and only once.
            fresh = orjson.dumps(event(policy_no="REPLAY-2"))
            headers = signed_event(key.key_id, key.secret, fresh, now_s=float(since) + 1)
            assert http.post(PATH, content=fresh, headers=headers).status_code == 201
            replayed = http.post(PATH, content=fresh, headers=headers)
            assert replayed.status_code == 401
            assert replayed.json()["error"]["code"] == "replayed_nonce"
            # The marker is not written again while it is there.
            assert local.get(MEMORY_SINCE) == since
    finally:
        container.close()


class WallClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def test_processes_agree_on_the_first_instant_written_and_the_rule_ends_with_the_window(
    private_redis: tuple[int, Any],
) -> None:
    port, start = private_redis
    server = start()
    url = f"redis://127.0.0.1:{port}/0"
    local = redis.Redis(port=port)
    now = datetime.now(UTC)  # the datetime clock: the marker never reads it

    def verdict(store: RedisNonceStore, signed_at: int, nonce: str | None = None) -> NonceVerdict:
        return store.remember(
            "PICC-1", nonce or secrets.token_urlsafe(18), now, 300, signed_at=signed_at
        )

    # Two API processes start on a new Redis: the first to write the marker wins.
    wall_a, wall_b = WallClock(1_000_000.5), WallClock(1_000_100.0)
    a = RedisNonceStore(url, wall_clock=wall_a)
    b = RedisNonceStore(url, wall_clock=wall_b)
    assert local.get(MEMORY_SINCE) == repr(1_000_000.5).encode()
    assert local.ttl(MEMORY_SINCE) == -1

    # Signed in (or before) the second the memory began: refused, by either process.
    assert verdict(a, 1_000_000) is NonceVerdict.BEFORE_MEMORY
    assert verdict(b, 1_000_000) is NonceVerdict.BEFORE_MEMORY
    assert verdict(b, 999_990) is NonceVerdict.BEFORE_MEMORY
    # Signed after it: accepted once, then a replay, whichever process sees it.
    nonce = secrets.token_urlsafe(18)
    assert verdict(b, 1_000_001, nonce) is NonceVerdict.NEW
    assert verdict(a, 1_000_001, nonce) is NonceVerdict.SEEN
    # A request refused as too old burns no nonce: nothing was recorded for it.
    refused = secrets.token_urlsafe(18)
    assert verdict(a, 1_000_000, refused) is NonceVerdict.BEFORE_MEMORY
    assert local.exists(f"ctplhub:nonce:PICC-1:{refused}") == 0

    # Twice the skew window after the marker, the rule stands down (such a timestamp is
    # stale on its own by then; the service refuses it before asking the store).
    wall_a.now_s = 1_000_000.5 + 600
    assert verdict(a, 1_000_000) is NonceVerdict.NEW
    assert local.get(MEMORY_SINCE) == repr(1_000_000.5).encode()  # still there, unchanged

    # Redis restarted under the running processes: the script is loaded again and the
    # first process to find the marker gone writes its own instant.
    server.terminate()
    server.wait(5)
    start()
    wall_b.now_s = 1_000_700.25
    assert verdict(b, 1_000_700) is NonceVerdict.BEFORE_MEMORY
    assert local.get(MEMORY_SINCE) == repr(1_000_700.25).encode()
    assert verdict(b, 1_000_701) is NonceVerdict.NEW
