"""Where the throttle keeps its counts: this process's memory, or Redis shared by every
process (DESIGN §4), both behind the `limits` library's moving-window strategy.

``ProcessMemoryStorage`` replaces the library's own async memory storage, which after
every hit starts a task that walks every key through a worker thread: under an
enumeration attempt (one hit per request, one key per client) that is a thread hop per
key per hit. Ours prunes a key's window when the key is touched and drops idle keys in
one pass a minute, all on the event loop and without a lock (nothing in it awaits).
A check costs a microsecond or two (tests/unit/security/test_throttle.py bounds a whole
guarded look-up; docs/DECISIONS.md has the figures).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits.aio.storage import RedisStorage, Storage
from limits.aio.storage.base import MovingWindowSupport

Clock = Callable[[], float]

_SWEEP_EVERY_S = 60.0
# Redis sits next to the servers: an answer slower than this means it is in trouble, and
# the request falls back to this process's memory instead of waiting.
REDIS_TIMEOUT_S = 0.5


class ProcessMemoryStorage(Storage, MovingWindowSupport):
    """Moving windows in this process's memory; ``clock`` is ``time.time`` but for tests."""

    STORAGE_SCHEME = ["ctplhub+memory"]  # noqa: RUF012 (the library's declaration)

    def __init__(self, clock: Clock = time.time) -> None:
        super().__init__()
        self._clock = clock
        # key -> (window length in seconds, instants of the hits in it, oldest first)
        self._windows: dict[str, tuple[float, deque[float]]] = {}
        self._next_sweep = clock() + _SWEEP_EVERY_S

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _live(self, key: str, expiry: float, now: float) -> deque[float] | None:
        window = self._windows.get(key)
        if window is None:
            return None
        hits = window[1]
        cutoff = now - expiry
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    # The throttle calls the two plain methods directly (no coroutine, no key formatting
    # by the library): the check of a verified query is then ~1 µs instead of ~5.
    def acquire(self, key: str, limit: int, expiry: float, amount: int = 1) -> bool:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._live(key, expiry, now)
        if hits is None:
            hits = self._windows.setdefault(key, (float(expiry), deque()))[1]
        if len(hits) + amount > limit:
            return False
        hits.extend([now] * amount)
        return True

    def window(self, key: str, expiry: float) -> tuple[float, int]:
        """(the oldest hit still in the window, or now; how many hits are in it)"""
        now = self._clock()
        hits = self._live(key, expiry, now)
        if not hits:
            return now, 0
        return hits[0], len(hits)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire(key, limit, expiry, amount)

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self.window(key, expiry)

    def _sweep(self, now: float) -> None:
        """Forget keys whose every hit has left its window."""
        self._next_sweep = now + _SWEEP_EVERY_S
        idle = [
            k for k, (expiry, hits) in self._windows.items() if not hits or hits[-1] <= now - expiry
        ]
        for key in idle:
            del self._windows[key]

    # The rest of the storage interface: only the moving window is used here.
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("ProcessMemoryStorage keeps moving windows only")

    async def get(self, key: str) -> int:
        raise NotImplementedError("ProcessMemoryStorage keeps moving windows only")

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError("ProcessMemoryStorage keeps moving windows only")

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)


def redis_storage(url: str, key_prefix: str) -> tuple[RedisStorage, Callable[[], object]]:
    """The library's async Redis storage on a pool of our own (short timeouts), and a
    function that returns the awaitable closing that pool."""
    import redis.asyncio

    pool = redis.asyncio.ConnectionPool.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    storage = RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix=key_prefix,
        wrap_exceptions=True,
        connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis-py
    )
    return storage, pool.aclose
