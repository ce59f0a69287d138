"""The access log's writer and vehicle index (DESIGN §5.3).

Every read of a vehicle's data is logged, and the verified query is the hottest path of
the platform, so recording must cost next to nothing there: ``record`` appends a tuple to
an in-memory queue (a ``deque``: thread-safe, O(1)) and returns. A task of the server's
event loop flushes the queue every ``flush_interval_s``, or sooner when ``flush_at``
entries wait, on a thread of its own: the vehicle index (an HMAC of each VIN) and the
multi-row ``INSERT`` never run on the loop.

When the database refuses a batch, the batch goes back to the head of the queue and is
retried with a doubling back-off (up to ``retry_max_s``); the queue holds at most
``max_pending`` entries, past which the oldest are dropped, counted and logged. The
bounds, and what a crash can cost, are in docs/DECISIONS.md ("Access log").

The vehicle is named by ``HMAC-SHA256(access-log key, VIN)``: its own key (not the blind
index's, which rotates), so the table never holds a VIN or a plate, and the index cannot
be recomputed from a VIN without the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import structlog

from ctplhub.services.ports import AccessEntry, AccessLogStore, AccessRow, Reader

_log = structlog.get_logger("ctplhub.access_log")

_Pending = tuple[datetime, Reader, str]  # (when, who and why, VIN)
_SHA256_BLOCK = 64


class VehicleIndex:
    """The keyed index that names a vehicle in the access log: HMAC-SHA256 (RFC 2104).

    Computed from the two padded-key SHA-256 states, prepared once: a third of
    ``hmac.digest``'s cost, which sets up OpenSSL's HMAC afresh on every call; the flush
    computes one per entry on the server's CPU. A test holds the two equal."""

    def __init__(self, key: bytes) -> None:
        if not 32 <= len(key) <= _SHA256_BLOCK:
            raise ValueError("the access log key must be 32 to 64 bytes")
        padded = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def __call__(self, vin: str) -> bytes:
        inner = self._inner.copy()
        inner.update(vin.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True)
class _Flusher:
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event
    lock: asyncio.Lock  # one flush at a time on this loop
    task: asyncio.Task[None]


class AccessLogWriter:
    """Implements ``services.ports.AccessLog``: queued on the answer path, written in
    batches by :meth:`start`'s task, flushed by :meth:`stop` and :meth:`close`."""

    def __init__(
        self,
        store: AccessLogStore,
        index: VehicleIndex,
        *,
        flush_interval_s: float = 0.2,
        flush_at: int = 1_000,
        batch_max: int = 5_000,
        max_pending: int = 200_000,
        retry_max_s: float = 10.0,
    ) -> None:
        self._store = store
        self._index = index
        self._interval = flush_interval_s
        self._flush_at = flush_at
        self._batch_max = batch_max
        self._max_pending = max_pending
        self._retry_max = retry_max_s
        self._pending: deque[_Pending] = deque()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="access-log")
        # One flusher per event loop that serves: a server has one; tests and the browser
        # tests run several apps (loops) on one container at once.
        self._flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}
        self._failing = False
        self.dropped = 0  # entries lost to the ``max_pending`` bound since start-up
        self.written = 0

    # --- the answer path -------------------------------------------------------------

    def record(self, reader: Reader, vin: str, at: datetime) -> None:
        pending = self._pending
        pending.append((at, reader, vin))
        if len(pending) >= self._flush_at:
            self._full()

    def record_many(self, reader: Reader, vins: Iterable[str], at: datetime) -> None:
        """The entries of one answer (a bulk verify's 10,000 vehicles), queued without
        waking the flusher: their write would otherwise take the GIL from the answer's
        last steps (presenting, signing, sending; docs/PERFORMANCE.md §19). The route
        calls :meth:`flush_soon` once the answer is sent; else the interval writes them,
        as any entry. Past a quarter of ``max_pending`` waiting, the flusher wakes now."""
        self._pending.extend((at, reader, vin) for vin in vins)
        if len(self._pending) >= self._max_pending // 4:
            self._full()

    def flush_soon(self) -> None:
        """Wake the flusher if entries wait (after an answer whose entries
        :meth:`record_many` queued), rather than at its next interval."""
        if self._pending:
            self._wake()

    def _full(self) -> None:
        """Enough entries wait: bound the queue, and wake the flusher."""
        self._bound()
        self._wake()

    def _wake(self) -> None:
        """Wake the flusher, unless it is backing off from a failure (then its timer
        decides)."""
        if self._failing or not self._flushers:
            return
        try:
            here = self._flushers.get(asyncio.get_running_loop())
        except RuntimeError:
            here = None
        if here is not None:
            here.wake.set()
            return
        for flusher in list(self._flushers.values())[:1]:
            with contextlib.suppress(RuntimeError):  # that loop is closing: its timer decides
                flusher.loop.call_soon_threadsafe(flusher.wake.set)

    def _bound(self) -> None:
        excess = len(self._pending) - self._max_pending
        if excess > 0:
            for _ in range(excess):
                self._pending.popleft()
            self.dropped += excess
            _log.error("access_log_entries_dropped", dropped=excess, total=self.dropped)

    # --- the flusher -------------------------------------------------------------------

    async def start(self) -> None:
        """Start flushing in the background (the server's lifespan)."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        task = asyncio.create_task(self._run(wake), name="access-log-flusher")
        self._flushers[loop] = _Flusher(loop, wake, asyncio.Lock(), task)

    async def stop(self) -> None:
        """Stop the background task and write what waits (shutdown)."""
        flusher = self._flushers.pop(asyncio.get_running_loop(), None)
        if flusher is not None:
            flusher.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher.task
        for attempt in range(3):
            if await self.flush():
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        if self._pending:
            _log.error("access_log_lost_at_shutdown", entries=len(self._pending))

    async def _run(self, wake: asyncio.Event) -> None:
        delay = self._interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
            wake.clear()
            if await self.flush():
                delay = self._interval
            else:
                delay = min(max(delay, self._interval) * 2, self._retry_max)

    async def flush(self) -> bool:
        """Write every entry queued before the call; False when the database refused (the
        entries stay queued, in order, for the next attempt)."""
        loop = asyncio.get_running_loop()
        flusher = self._flushers.get(loop)
        async with flusher.lock if flusher is not None else asyncio.Lock():
            todo = len(self._pending)
            while (count := min(todo, self._batch_max, len(self._pending))) > 0:
                batch = self._take(count)
                if not batch:  # another loop's flusher wrote them
                    break
                writing = loop.run_in_executor(self._executor, self._write, batch)
                try:
                    await asyncio.shield(writing)
                except asyncio.CancelledError:
                    # ``stop`` cancelled the flusher while the thread wrote: let it finish,
                    # so that the batch is either written or back in the queue for the
                    # flush that ``stop`` makes next, never dropped.
                    try:
                        await writing
                    except Exception as error:
                        self._requeue(batch, error)
                    raise
                except Exception as error:
                    self._requeue(batch, error)
                    return False
                todo -= len(batch)
            if self._failing:
                _log.info("access_log_writes_restored", pending=len(self._pending))
            self._failing = False
            return True

    def flush_now(self) -> bool:
        """Write what waits, from a thread that is not running a flusher
        (``Container.close``), and return once a batch a flusher had already taken is
        written too: its write runs on the writer's one thread, so a no-op handed to that
        thread after it finishes after it."""
        batch = self._take(len(self._pending))
        try:
            self._write(batch)
        except Exception as error:
            self._requeue(batch, error)
            _log.error("access_log_lost_at_close", entries=len(self._pending))
            return False
        with contextlib.suppress(RuntimeError):  # closed: nothing can be in flight
            self._executor.submit(_nothing).result()
        return True

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _take(self, count: int) -> list[_Pending]:
        """Up to ``count`` of the oldest entries; fewer when another loop's flusher took
        some meanwhile (each ``popleft`` is atomic)."""
        popleft, taken = self._pending.popleft, []
        for _ in range(count):
            try:
                taken.append(popleft())
            except IndexError:
                break
        return taken

    def _requeue(self, batch: list[_Pending], error: Exception) -> None:
        self._pending.extendleft(reversed(batch))
        self._bound()
        if not self._failing:
            # The type only: a database error's message may quote parameters.
            _log.warning(
                "access_log_write_failed", error=type(error).__name__, pending=len(self._pending)
            )
        self._failing = True

    def _write(self, batch: list[_Pending]) -> None:
        index = self._index
        rows = [
            AccessRow(
                at, r.actor, r.role, r.purpose, index(vin), r.request_id, r.reference, r.reason
            )
            for at, r, vin in batch
        ]
        self._store.append(rows)
        self.written += len(rows)

    # --- the owner's listing -----------------------------------------------------------

    async def entries(self, vin: str, *, since: datetime, limit: int) -> list[AccessEntry]:
        await self.flush()  # what this process recorded so far, the caller's own read too
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._store.newest, self._index(vin), since, limit
        )
