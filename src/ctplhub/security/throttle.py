"""Throttling and anti-enumeration (DESIGN §5.3): what the API and the pages call.

Interface (everything a caller needs is importable from this module):

``Throttle``, built once by ``bootstrap`` and found on ``AppServices.throttle``:
  - ``await throttle.check(rule, key)``: raise :class:`RateLimited` when the budget of
    ``rule`` for ``key`` is spent; counts nothing.
  - ``await throttle.hit(rule, key)``: count one against ``rule`` for ``key``; raise
    :class:`RateLimited` (and count nothing) when the budget was already spent.
  - ``throttle.enabled``: False only under ``CTPLHUB_RATE_LIMITS=off``; then ``check``
    and ``hit`` do nothing.
  - ``await throttle.close()``: close the Redis connections (``close_resources``).
  Keys are whatever names the thing counted: a client address, an account name, a
  canonical plate. Redis never sees them as given: each (rule, key) is named there by a
  keyed hash with a secret of the deployment, so it holds no plate or address in clear.

``guarded_lookup(throttle, client, plate, attempt, verified=...)``: wrap one owner
  look-up (the coverage query, the access log, the owner page). Verified (a VIN tail or
  ID number given): refused up front while the plate's or the client's failed-verification
  budget is spent, so that a right guess after the limit is refused too; a ``NotFound``
  from ``attempt`` counts one failure against both, and is re-raised. A plate's look-ups
  under way in this process count against its budget until decided, so guesses sent all
  at once cannot overtake the count (the client's budget is not held so: one client's
  many concurrent right answers are normal; docs/security.md). Unverified: every look-up
  counts against the client's ``unverified_per_client`` budget.

Client keys: pass the peer's address; ``guarded_lookup`` counts IPv6 clients by their /64
(``client_bucket``), and so should other callers.

Sign-in (the staff pages) uses the generic pair, e.g.::

    await throttle.hit(SIGN_IN_PER_CLIENT, client_bucket(address))  # every attempt
    await throttle.hit(SIGN_IN_PER_ACCOUNT, username)   # every attempt, before the password

Rules and the ``CTPLHUB_RATE_LIMITS`` grammar: ``security/throttle_rules.py``.

Storage: this process's memory, or Redis when ``CTPLHUB_REDIS_URL`` is set, so that every
process counts against one budget. When Redis fails, the throttle counts in this
process's memory (never fails open), logs ``rate_limit_storage_down`` once, probes Redis
in the background and goes back to it when it answers (``rate_limit_storage_restored``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from limits import RateLimitItem
from limits.aio.strategies import MovingWindowRateLimiter

from ctplhub.domain.errors import NotFound, RateLimited
from ctplhub.domain.identifiers import normalise_plate
from ctplhub.security.throttle_rules import (
    FAILED_PER_CLIENT,
    FAILED_PER_PLATE,
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_CLIENT,
    UNVERIFIED_PER_CLIENT,
    RateLimits,
    RateLimitsInvalid,
    parse_rate_limits,
)
from ctplhub.security.throttle_storage import Clock, ProcessMemoryStorage, redis_storage

__all__ = [
    "FAILED_PER_CLIENT",
    "FAILED_PER_PLATE",
    "SIGN_IN_PER_ACCOUNT",
    "SIGN_IN_PER_CLIENT",
    "UNVERIFIED_PER_CLIENT",
    "RateLimited",
    "RateLimits",
    "RateLimitsInvalid",
    "Throttle",
    "client_bucket",
    "guarded_lookup",
    "parse_rate_limits",
]

T = TypeVar("T")

_log = structlog.get_logger("ctplhub.throttle")
_PROBE_EVERY_S = 2.0
_MESSAGE = "too many attempts; try again in {} seconds"


class Throttle:
    def __init__(
        self,
        limits: RateLimits,
        secret: bytes,
        *,
        redis_url: str | None = None,
        key_prefix: str = "ctplhub:rl",
        clock: Clock = time.time,
        probe_every_s: float = _PROBE_EVERY_S,
    ) -> None:
        self.enabled = limits.enabled
        self._items = limits.items
        self._expiry = {rule: float(item.get_expiry()) for rule, item in limits.items.items()}
        self._secret = secret
        self._clock = clock
        self._memory = ProcessMemoryStorage(clock)
        self._redis: MovingWindowRateLimiter | None = None
        self._close_redis: Callable[[], object] | None = None
        if redis_url and limits.enabled:
            storage, self._close_redis = redis_storage(redis_url, key_prefix)
            self._redis = MovingWindowRateLimiter(storage)
        self._redis_up = True
        self._probe_every_s = probe_every_s
        self._probe: asyncio.Task[None] | None = None
        # Verified look-ups of each plate under way in this process (``guarded_lookup``).
        self.plates_in_flight: dict[str, int] = {}

    @property
    def shared(self) -> bool:
        """True while the counts live in Redis (shared by every process)."""
        return self._redis is not None and self._redis_up

    async def check(self, rule: str, key: str, *, pending: int = 0) -> None:
        """``pending``: attempts under way that may yet count (refused for a second)."""
        if not self.enabled:
            return
        if self._redis is not None and self._redis_up:
            try:
                oldest, count = await _window(
                    self._redis, self._items[rule], self._stored_key(rule, key)
                )
            except Exception:
                self._redis_failed()
                oldest, count = self._memory.window(f"{rule}\x00{key}", self._expiry[rule])
        else:
            oldest, count = self._memory.window(f"{rule}\x00{key}", self._expiry[rule])
        amount = self._items[rule].amount
        if count >= amount:
            self._refuse(rule, oldest)
        if count + pending >= amount:
            raise RateLimited(_MESSAGE.format(1), retry_after_s=1)

    async def hit(self, rule: str, key: str) -> None:
        if not self.enabled:
            return
        item = self._items[rule]
        if self._redis is not None and self._redis_up:
            stored = self._stored_key(rule, key)
            try:
                counted = await self._redis.hit(item, stored)
            except Exception:
                self._redis_failed()
            else:
                if counted:
                    return
                try:
                    oldest = (await _window(self._redis, item, stored))[0]
                except Exception:  # refused all the same; wait a whole window
                    oldest = self._clock()
                self._refuse(rule, oldest)
        local = f"{rule}\x00{key}"
        if not self._memory.acquire(local, item.amount, self._expiry[rule]):
            self._refuse(rule, self._memory.window(local, self._expiry[rule])[0])

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if self._close_redis is not None:
            closing = self._close_redis()
            if isinstance(closing, Awaitable):
                await closing

    def _stored_key(self, rule: str, key: str) -> str:
        """The name of (rule, key) in Redis. Keyed BLAKE2b (a MAC by design, RFC 7693; a
        third of HMAC-SHA256's cost here), 128 bits: no plate or address in clear, no
        collisions in practice. This process's memory holds the plain names: it holds the
        requests themselves anyway, and hashing cost a verified query ~2 µs."""
        message = f"{rule}\x00{key}".encode()
        return hashlib.blake2b(message, key=self._secret, digest_size=16).hexdigest()

    def _refuse(self, rule: str, oldest: float) -> None:
        wait = max(1, math.ceil(oldest + self._expiry[rule] - self._clock()))
        raise RateLimited(_MESSAGE.format(wait), retry_after_s=wait)

    def _redis_failed(self) -> None:
        """Count in this process's memory until Redis answers again: looser than one
        shared count by the number of processes, never as loose as none."""
        if not self._redis_up:
            return
        self._redis_up = False
        _log.warning("rate_limit_storage_down", fallback="process_memory")
        self._probe = asyncio.get_running_loop().create_task(self._wait_for_redis())

    async def _wait_for_redis(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self._probe_every_s)
            try:
                back = await self._redis.storage.check()
            except Exception:
                back = False
            if back:
                self._redis_up = True
                self._probe = None
                _log.info("rate_limit_storage_restored")
                return


async def _window(
    limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str
) -> tuple[float, int]:
    """(oldest hit in the window, hits in the window) of ``key`` under ``item``."""
    stats = await limiter.get_window_stats(item, key)
    return stats.reset_time - item.get_expiry(), item.amount - stats.remaining


def client_bucket(address: str) -> str:
    """Whom a per-client budget counts: an IPv4 address, or the /64 network of an IPv6
    one, since one subscriber is routinely given a whole /64 (RFC 6177) and could
    otherwise take a fresh address for every guess."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:  # a dual-stack socket's IPv4 peer
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False).network_address) + "/64"


def canonical_plate(raw: object) -> str | None:
    """The plate as every spelling of it counts (NFKC, upper case, no separators), or
    None when it is no text. Not validated (half the cost): a string that is no plate
    fails the look-up with ``invalid_plate``, which is not a failed verification, so its
    budget is never spent."""
    return normalise_plate(raw) if isinstance(raw, str) else None


async def guarded_lookup(
    throttle: Throttle,
    client: str,
    plate: object,
    attempt: Callable[[], Awaitable[T]],
    *,
    verified: bool,
) -> T:
    """Run ``attempt`` (a look-up of ``plate`` for ``client``) under the §5.3 budgets; see
    the module's docstring. ``plate`` is the plate as the caller received it."""
    if not throttle.enabled:
        return await attempt()
    client = client_bucket(client)
    if not verified:
        await throttle.hit(UNVERIFIED_PER_CLIENT, client)
        return await attempt()
    plate_key = canonical_plate(plate)
    if plate_key is None:
        return await _verified(throttle, client, None, attempt)
    # Guesses sent at once would all be answered before the first failure is counted: the
    # plate's look-ups under way count against its budget until they are decided.
    in_flight = throttle.plates_in_flight
    pending = in_flight.get(plate_key, 0)
    in_flight[plate_key] = pending + 1
    try:
        await throttle.check(FAILED_PER_PLATE, plate_key, pending=pending)
        return await _verified(throttle, client, plate_key, attempt)
    finally:
        if in_flight[plate_key] == 1:
            del in_flight[plate_key]
        else:
            in_flight[plate_key] -= 1


async def _verified(
    throttle: Throttle, client: str, plate_key: str | None, attempt: Callable[[], Awaitable[T]]
) -> T:
    await throttle.check(FAILED_PER_CLIENT, client)
    try:
        return await attempt()
    except NotFound:
        if plate_key is not None:
            await _count_failure(throttle, FAILED_PER_PLATE, plate_key)
        await _count_failure(throttle, FAILED_PER_CLIENT, client)
        raise


async def _count_failure(throttle: Throttle, rule: str, key: str) -> None:
    # A concurrent failure may have spent the budget since the check: this one still
    # answers 404 like any other wrong guess, and the next is refused up front.
    with contextlib.suppress(RateLimited):
        await throttle.hit(rule, key)
