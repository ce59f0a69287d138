"""Replay protection shared by every API process through Redis (DESIGN §4, §5.1).

When Redis is unreachable or slow, ``remember`` raises (redis-py's ``ConnectionError`` or
``TimeoutError``): the signed request is refused ``503 storage_unavailable`` with
``Retry-After`` (``store/failures.py``), never let through unchecked. Nothing falls back
to another store: a nonce Redis remembered before it went down would be unknown there,
so a replay of it would pass.

Redis keeps nothing on disk, so a restart (or a flush) forgets every nonce. The marker
key ``MEMORY_SINCE`` closes that gap: its absence means Redis's memory started empty
since the last request, and the first process to find it missing writes the instant it
did (no expiry: the key lives exactly as long as the memory it vouches for; the first
writer wins, so every process reads the same instant). For ``2 * ttl_s`` after that
instant, a request signed no later than it is ``BEFORE_MEMORY``: accepted before the
loss it could be sent again with a nonce Redis no longer knows. Honest clients sign with
the current second and pass from the next second on (docs/DECISIONS.md). Each process
writes the marker when it starts too, so a new deployment's marker predates its traffic.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime

import redis

from ctplhub.services.ports import NonceVerdict

# Redis sits next to the servers: a signed request waits at most this long for it.
TIMEOUT_S = 0.5
MEMORY_SINCE = "ctplhub:nonce-memory-since"

# One round trip, atomic: find (or write) the marker, refuse a request signed before it
# while it is young, else SET NX EX the nonce. KEYS: marker, nonce; ARGV: now (unix
# seconds, fractional), signed_at, window (s), nonce TTL (s). Returns 1 new, 0 seen,
# 2 signed before the memory.
_REMEMBER = """
local since = redis.call('GET', KEYS[1])
if not since then
  redis.call('SET', KEYS[1], ARGV[1])
  since = ARGV[1]
end
since = tonumber(since)
if tonumber(ARGV[1]) - since < tonumber(ARGV[3]) and tonumber(ARGV[2]) <= since then
  return 2
end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[4]) then
  return 1
end
return 0
"""
_VERDICTS = {1: NonceVerdict.NEW, 0: NonceVerdict.SEEN, 2: NonceVerdict.BEFORE_MEMORY}


class RedisNonceStore:
    def __init__(self, url: str, wall_clock: Callable[[], float] = time.time) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        # redis-py sends the script by its SHA-1 and loads it again after a restart.
        self._script = self._redis.register_script(_REMEMBER)
        # The clock signed timestamps are checked against (unix seconds), not the
        # service's injectable datetime clock.
        self._wall_clock = wall_clock
        # Written at start as well, not only by the first signed request: in a new
        # deployment the marker then predates all traffic and refuses nothing honest.
        # Best effort: with Redis down, the first request after it is back writes it.
        with contextlib.suppress(redis.RedisError):
            self._redis.set(MEMORY_SINCE, repr(wall_clock()), nx=True)

    def remember(
        self, key_id: str, nonce: str, now: datetime, ttl_s: int, *, signed_at: int
    ) -> NonceVerdict:
        # Nonces are kept twice the skew window, like the SQL store, so a replay can never
        # outlive them; the marker guards the same span after Redis lost them all.
        window = 2 * ttl_s
        answer = self._script(
            keys=[MEMORY_SINCE, f"ctplhub:nonce:{key_id}:{nonce}"],
            args=[repr(self._wall_clock()), signed_at, window, window],
        )
        return _VERDICTS[int(answer)]
