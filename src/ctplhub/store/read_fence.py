"""Where the read fence lives (``services.ports.ReadFence``; docs/deploy.md, "Read
routing"): the ledger size the latest acknowledged write reached.

The ledger is one log appended under one lock, so its size orders every accepted write:
a database that holds ``n`` leaves holds every event of the first ``n`` and the policies
they made (they commit in the same transaction). Every API process publishes to the
same Redis key, so a write answered by one process fences the reads of all the others;
``LocalReadFence`` is the same rule for one process (tests, a single server).

The key only ever grows (``ZADD GT``). A Redis that lost it (a restart) answers
"unknown", which sends reads to the primary until the next write or ``raise_to``. It is
named after the primary database, so deployments sharing one Redis keep apart; a primary
restored to a smaller ledger must have it deleted (until then reads stay on the primary).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading

import redis
import redis.asyncio

_MEMBER = "ledger_size"
_TIMEOUT_S = 0.5


def fence_key(primary_url: str) -> str:
    # The URL may hold a password: only a digest of it goes to Redis.
    return "ctplhub:read-fence:" + hashlib.sha256(primary_url.encode()).hexdigest()[:16]


class LocalReadFence:
    """The fence of one process."""

    def __init__(self) -> None:
        self._size: int | None = None
        self._lock = threading.Lock()  # ``passed`` runs on the server's worker threads

    def passed(self, ledger_size: int) -> None:
        with self._lock:
            self._size = max(self._size or 0, ledger_size)

    async def raise_to(self, ledger_size: int) -> None:
        self.passed(ledger_size)

    async def needed(self) -> int | None:
        return self._size

    async def close(self) -> None:
        return None

    def dispose(self) -> None:
        return None


class RedisReadFence:
    """The fence shared by every process of a deployment."""

    def __init__(self, url: str, primary_url: str) -> None:
        self._url = url
        self.key = fence_key(primary_url)
        self._sync = redis.Redis.from_url(
            url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S
        )
        # One async client per event loop: a server has one; tests start a loop per app.
        self._clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}

    def _async(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(
                self._url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S
            )
            self._clients[loop] = client
        return client

    def passed(self, ledger_size: int) -> None:
        # A failure raises: the write is stored, but its answer must not go out as if
        # the next read will see it (an insurer's retry of the same event is idempotent).
        self._sync.zadd(self.key, {_MEMBER: ledger_size}, gt=True)

    async def raise_to(self, ledger_size: int) -> None:
        await self._async().zadd(self.key, {_MEMBER: ledger_size}, gt=True)

    async def needed(self) -> int | None:
        score = await self._async().zscore(self.key, _MEMBER)
        return None if score is None else int(score)

    async def close(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def dispose(self) -> None:
        self._sync.close()
