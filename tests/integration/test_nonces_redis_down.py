"""Replay protection when the deployment's Redis goes away (issue 13, item 5: "Redis
down, limits degrade safely, never open"): a signed write is refused ``503
storage_unavailable`` with ``Retry-After`` while the nonce store cannot answer, a replay
of an accepted request is never let through, and writes are accepted again once Redis is
back (a request signed before the new Redis's memory began refused, test_nonces_redis_restart.py).
On a private ``redis-server`` that the test stops (never the shared one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ctplhub.bootstrap import build_app
from ctplhub.security.nonces import MEMORY_SINCE
from ctplhub.store.tables import policy_events
from helpers import Clock, event
from redis_fixtures import EVENTS_PATH, container_on_redis, private_redis, signed_event

__all__ = ["private_redis"]  # a fixture

PATH = EVENTS_PATH


def test_signed_writes_wait_for_the_nonce_store_never_pass_unchecked(
    database_url: str, home: Path, clock: Clock, private_redis: tuple[int, Any]
) -> None:
    port, start = private_redis
    server = start()
    container = container_on_redis(port, database_url, home, clock)
    try:
        with TestClient(build_app(container)) as http:
            key = container.insurers.add("PICC", "中国人民财产保险", actor="test")
            first = orjson.dumps(event(policy_no="NONCE-1"))
            first_headers = signed_event(key.key_id, key.secret, first)
            assert http.post(PATH, content=first, headers=first_headers).status_code == 201

            server.terminate()
            server.wait(5)
            second = orjson.dumps(event(policy_no="NONCE-2"))
            refused = http.post(
                PATH, content=second, headers=signed_event(key.key_id, key.secret, second)
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "storage_unavailable"
            assert refused.headers["Retry-After"]
            # The accepted request sent again, same nonce: refused too, not answered as
            # an idempotent repeat (its nonce cannot be checked).
            replay = http.post(PATH, content=first, headers=first_headers)
            assert replay.status_code == 503
            with container.engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(policy_events)).scalar()
            assert stored == 1

            start()  # an empty Redis: the accepted request, replayed, is refused on its age
            replay = http.post(PATH, content=first, headers=first_headers)
            assert replay.status_code == 401
            assert replay.json()["error"]["code"] == "stale_timestamp"
            # The refused one signed again, with a new nonce, after the new memory began.
            since = redis.Redis(port=port).get(MEMORY_SINCE)
            assert since is not None
            again_headers = signed_event(key.key_id, key.secret, second, now_s=float(since) + 1)
            again = http.post(PATH, content=second, headers=again_headers)
            assert again.status_code == 201
            replayed = http.post(PATH, content=second, headers=again.request.headers)
            assert replayed.status_code == 401
            assert replayed.json()["error"]["code"] == "replayed_nonce"
    finally:
        container.close()
