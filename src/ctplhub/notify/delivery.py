"""The outbox worker step (DESIGN §7): claim what is due, send it, record each outcome.

- **Recorded in the next commit after its channel acknowledges.** An acknowledged
  message joins the worker's next ``mark_sent_many``: one transaction records every
  message acknowledged while the previous one was being committed (group commit; one
  commit a message capped PostgreSQL delivery at ~370 a second: docs/PERFORMANCE.md), and
  its send is done only once that commit is. So a SIGKILL loses nothing (unsent claims
  come back when their lease ends) and re-sends nothing recorded, except the few
  messages caught between acknowledgement and commit. Those go again with the same id
  (``X-CTPL-Message-Id``, ``Message-ID``), which lets the receiver drop the repeat.
- **Failures are scheduled, never slept on.** A retryable failure gets
  ``next_attempt_at`` from :class:`~ctplhub.notify.backoff.BackOff` (tenacity's wait
  strategies; 1 min, 5 min, 30 min, 2 h, ... plus jitter, on the run's clock); a
  permanent one, or the last try, becomes a dead letter (``next_attempt_at=None``).
- **Quiet hours defer.** ``Outbox.claim`` claims nothing in quiet hours; a message
  whose send would start in them anyway (a batch claimed at 20:59:59) is given back,
  due at the next 08:00 (``domain.reminders``), not dropped.
- **Concurrency** inside one worker: asyncio with at most ``concurrency`` sends in
  flight; the next batch is claimed while the last sends of the previous one finish. The
  outbox calls (blocking SQLAlchemy) run on a dedicated thread, one at a time by default,
  which also keeps SQLite to one writer.
- **Leases** are given on the run's clock read before the claim; a claim that waited on
  the database longer than the lease hands out rows already claimable again. This worker
  never sends a message twice at once (it skips an id whose send is in flight); across
  workers, the lease (default 5 min) must outlast a database stall plus a send timeout.
- **Stopping** (``stop`` set): no new claims, claimed messages not yet started are given
  back (``Outbox.defer``, the try not counted), sends in flight finish and are recorded.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import structlog

from ctplhub.domain.reminders import in_quiet_hours, next_send_instant
from ctplhub.notify import metrics
from ctplhub.notify.backoff import DEFAULT_MAX_ATTEMPTS, BackOff
from ctplhub.notify.channels import Channel, DeliveryFailed
from ctplhub.services.reminder_ports import DeliveryTally, Outbox, OutboxMessage

T = TypeVar("T")
Clock = Callable[[], datetime]

_log = structlog.get_logger("ctplhub.notify")


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    concurrency: int = 64  # sends in flight at once
    batch: int = 200  # rows per claim
    lease: timedelta = timedelta(minutes=5)  # a killed worker's claims return after this
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    db_threads: int = 1  # outbox calls at once (1 keeps SQLite to a single writer)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch < 1 or self.db_threads < 1:
            raise ValueError("concurrency, batch and db_threads must be at least 1")
        if self.lease <= timedelta(0):
            raise ValueError("the lease must be positive")


def new_worker_id() -> str:
    """Names a worker in ``claimed_by``: host, process and a random tail (a restarted
    process with the same pid is another worker)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    dead_lettered: int = 0
    claimed: int = 0

    def frozen(self) -> DeliveryTally:
        return DeliveryTally(self.sent, self.failed, self.deferred, self.dead_lettered)


class Delivery:
    """Delivers through ``channels`` (by ``OutboxMessage.channel``); one per event loop
    (the channels' connection pools belong to it). Close it with :meth:`aclose`."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        *,
        options: DeliveryOptions | None = None,
        worker_id: str | None = None,
        backoff: BackOff | None = None,
    ) -> None:
        self.options = options or DeliveryOptions()
        self.worker_id = worker_id or new_worker_id()
        self._outbox = outbox
        self._channels = dict(channels)
        self._backoff = backoff or BackOff(self.options.max_attempts)
        self._db_pool = ThreadPoolExecutor(self.options.db_threads, thread_name_prefix="outbox")
        self.last_claimed = 0  # rows the last pass claimed (the worker idles on 0)
        self._sending: set[int] = set()  # ids whose send has started and is not recorded
        # Acknowledged, waiting for the next commit; the task committing them.
        self._acked: list[tuple[int, asyncio.Future[None]]] = []
        self._recording: asyncio.Task[None] | None = None

    async def run(self, clock: Clock, *, stop: asyncio.Event | None = None) -> DeliveryTally:
        """Claim and send until nothing is due at ``clock()`` (or ``stop`` is set).

        An outbox call that fails (the database went away) ends the pass after the sends
        in flight are done, and is raised: the caller waits and runs again, and whatever
        was claimed comes back when its lease ends."""
        tally = _Tally()
        in_flight = asyncio.Semaphore(self.options.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        broken: list[Exception] = []

        def stopping() -> bool:
            return bool(broken) or (stop is not None and stop.is_set())

        def finished(message_id: int, task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            self._sending.discard(message_id)
            in_flight.release()

        try:
            while not stopping():
                claimed = await self._db(
                    self._outbox.claim,
                    clock(),
                    self.options.batch,
                    self.worker_id,
                    self.options.lease,
                )
                tally.claimed += len(claimed)
                if not claimed:
                    break
                for index, message in enumerate(claimed):
                    if message.id in self._sending:
                        # Claimed again while this worker still sends it: the claim waited
                        # for the database past the lease it gave (a locked SQLite file, a
                        # stalled server). The send in flight records the outcome.
                        continue
                    await in_flight.acquire()
                    if stopping():
                        in_flight.release()
                        if not broken:
                            await self._give_back(claimed[index:], clock(), tally)
                        break
                    self._sending.add(message.id)
                    task = asyncio.create_task(self._deliver(message, clock, tally, broken))
                    tasks.add(task)
                    task.add_done_callback(partial(finished, message.id))
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self.last_claimed = tally.claimed
        if broken:
            raise broken[0]
        return tally.frozen()

    async def _deliver(
        self, message: OutboxMessage, clock: Clock, tally: _Tally, broken: list[Exception]
    ) -> None:
        channel_name = message.channel
        try:
            now = clock()
            if in_quiet_hours(now):
                await self._db(self._outbox.defer, message.id, next_send_instant(now))
                tally.deferred += 1
                metrics.DEFERRED.labels(channel_name).inc()
                return
            failure = await self._send(message)
            now = clock()
            if failure is None:
                await self._record_sent(message.id, clock)
                tally.sent += 1
                metrics.SENT.labels(channel_name).inc()
                return
            retry_at = (
                self._backoff.next_attempt_at(message.attempts, now) if failure.retryable else None
            )
            await self._db(self._outbox.mark_failed, message.id, now, failure.code, retry_at)
        except Exception as error:  # the outbox call failed: stop claiming, report it
            broken.append(error)
            return
        tally.failed += 1
        metrics.FAILED.labels(channel_name).inc()
        if retry_at is None:
            tally.dead_lettered += 1
            metrics.DEAD.labels(channel_name).inc()
        # The id and a code, never the address or the body (STYLE.md).
        _log.warning(
            "reminder_send_failed",
            message_id=message.id,
            channel=channel_name,
            code=failure.code,
            attempt=message.attempts,
            retry_at=retry_at.isoformat() if retry_at else None,
            dead_letter=retry_at is None,
        )

    async def _record_sent(self, message_id: int, clock: Clock) -> None:
        """Return once ``message_id`` is recorded sent: by the commit under way's successor,
        which takes every message acknowledged meanwhile (the module doc)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acked.append((message_id, future))
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._record_acked(clock))
        await future

    async def _record_acked(self, clock: Clock) -> None:
        while self._acked:
            batch, self._acked = self._acked, []
            try:
                await self._db(self._outbox.mark_sent_many, [i for i, _ in batch], clock())
            except Exception as error:  # each waiter reports it (run() then stops)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _send(self, message: OutboxMessage) -> DeliveryFailed | None:
        channel = self._channels.get(message.channel)
        if channel is None:  # e.g. SMS with no gateway configured: retried, then dead
            return DeliveryFailed("channel_not_configured", retryable=True)
        try:
            await channel.send(message)
        except DeliveryFailed as failure:
            return failure
        except Exception as error:  # a bug in a channel must not lose the message
            _log.error(
                "reminder_channel_error",
                message_id=message.id,
                channel=message.channel,
                error=type(error).__name__,
            )
            return DeliveryFailed("internal_error", retryable=True)
        return None

    async def _give_back(
        self, messages: Sequence[OutboxMessage], at: datetime, tally: _Tally
    ) -> None:
        for message in messages:
            if message.id in self._sending:
                continue  # claimed twice (see run); its send in flight records it
            await self._db(self._outbox.defer, message.id, at)
            tally.deferred += 1
            metrics.DEFERRED.labels(message.channel).inc()

    async def _db(self, call: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, partial(call, *args))

    async def aclose(self) -> None:
        """Close the channels (their connections and threads) and the outbox thread."""
        for channel in self._channels.values():
            await channel.aclose()
        self._db_pool.shutdown(wait=True)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it is installed (with uvicorn, on Linux and macOS):
    a send costs about 15 % less CPU than on asyncio's own loop; else on asyncio's.

    While it runs, a thread waiting for the GIL gets it after 1 ms instead of 5: the
    outbox thread releases the GIL at every commit and then waited for the busy event
    loop, which made the outbox, not the network, the limit (docs/DECISIONS.md)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, 0.001))
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover (Windows)
            return asyncio.run(main)
        return uvloop.run(main)
    finally:
        sys.setswitchinterval(previous)


class DeliverDueNow:
    """``DeliverDue`` for ``ctplhub remind run``: one pass at ``at`` in its own event
    loop, channels opened for the pass and closed after it."""

    def __init__(
        self,
        outbox: Outbox,
        make_channels: Callable[[], Mapping[str, Channel]],
        options: DeliveryOptions | None = None,
    ) -> None:
        self._outbox = outbox
        self._make_channels = make_channels
        self._options = options or DeliveryOptions()

    def __call__(self, at: datetime) -> DeliveryTally:
        return run_loop(self._run(at))

    async def _run(self, at: datetime) -> DeliveryTally:
        delivery = Delivery(self._outbox, self._make_channels(), options=self._options)
        try:
            return await delivery.run(lambda: at)
        finally:
            await delivery.aclose()
