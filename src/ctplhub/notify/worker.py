"""``ctplhub worker``'s loop: the decide step every minute, delivery all the time.

Two tasks share one event loop. The decider calls the deciding side's step (a blocking
function of the run's clock, run in a thread) once a minute. The deliverer runs delivery
passes back to back, and rests ``idle_s`` when a pass claimed nothing. A stop (SIGTERM,
SIGINT) is an event: the deliverer claims nothing more, gives back what it claimed but has
not started, lets the sends in flight finish and records them, and the decider finishes
the decision in progress, if any.

A database that does not answer (``unavailable``: SQLAlchemy's ``OperationalError`` in
production) is waited out: each task logs it, waits 1, 2, 4 ... up to 30 s, and goes on
where it was; nothing is lost, since what was claimed comes back when its lease ends.
Logs name events and error types only, never an address or a body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from ctplhub.notify.delivery import Clock, Delivery

_log = structlog.get_logger("ctplhub.worker")

Decide = Callable[[datetime], object]


class _Waits:
    """1, 2, 4 ... ``longest`` seconds while the database stays away."""

    def __init__(self, first: float, longest: float) -> None:
        self._first, self._longest = first, longest
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return float(min(self._first * 2 ** (self.failures - 1), self._longest))

    def reset(self) -> bool:
        """True when the database had been away (worth one log line)."""
        was_away, self.failures = self.failures > 0, 0
        return was_away


async def _rest(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class Worker:
    def __init__(
        self,
        delivery: Delivery,
        clock: Clock,
        *,
        decide: Decide | None = None,
        decide_every: timedelta = timedelta(minutes=1),
        idle_s: float = 1.0,
        unavailable: tuple[type[BaseException], ...] = (),
        first_wait_s: float = 1.0,
        longest_wait_s: float = 30.0,
    ) -> None:
        self._delivery = delivery
        self._clock = clock
        self._decide = decide
        self._decide_every = decide_every.total_seconds()
        self._idle_s = idle_s
        self._unavailable = unavailable
        self._first_wait, self._longest_wait = first_wait_s, longest_wait_s
        self.passes = 0
        self.decisions = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; returns once both tasks have finished cleanly."""
        _log.info("worker_started", worker_id=self._delivery.worker_id)
        tasks = [asyncio.create_task(self._deliver(stop), name="deliver")]
        if self._decide is not None:
            tasks.append(asyncio.create_task(self._decider(stop, self._decide), name="decide"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            _log.info("worker_stopped", worker_id=self._delivery.worker_id)

    async def _deliver(self, stop: asyncio.Event) -> None:
        waits = _Waits(self._first_wait, self._longest_wait)
        while not stop.is_set():
            try:
                tally = await self._delivery.run(self._clock, stop=stop)
            except Exception as error:
                await self._wait_out(stop, waits, "deliver", error)
                continue
            if waits.reset():
                _log.info("database_available", step="deliver")
            self.passes += 1
            if tally.sent or tally.failed or tally.deferred:
                _log.info(
                    "delivery_pass",
                    sent=tally.sent,
                    failed=tally.failed,
                    deferred=tally.deferred,
                    dead_lettered=tally.dead_lettered,
                )
            if self._delivery.last_claimed == 0:
                await _rest(stop, self._idle_s)

    async def _decider(self, stop: asyncio.Event, decide: Decide) -> None:
        waits = _Waits(self._first_wait, self._longest_wait)
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                result = await asyncio.to_thread(decide, self._clock())
            except Exception as error:
                await self._wait_out(stop, waits, "decide", error)
                continue
            if waits.reset():
                _log.info("database_available", step="decide")
            self.decisions += 1
            _log.info("reminders_decided", **_fields(result))
            await _rest(stop, max(0.0, self._decide_every - (loop.time() - started)))

    async def _wait_out(
        self, stop: asyncio.Event, waits: _Waits, step: str, error: Exception
    ) -> None:
        seconds = waits.next()
        if isinstance(error, self._unavailable):
            _log.warning(
                "database_unavailable", step=step, error=type(error).__name__, retry_in_s=seconds
            )
        else:  # a bug: keep the worker alive, say so loudly, do not spin
            _log.error("worker_step_failed", step=step, error=type(error).__name__)
        await _rest(stop, seconds)


def _fields(result: object) -> dict[str, object]:
    """Counts of a decision tally (ints only: nothing personal) for its log line."""
    names = getattr(result, "__slots__", None) or getattr(result, "__dict__", {})
    return {n: getattr(result, n) for n in names if isinstance(getattr(result, n, None), int)}


def running_clock(start: datetime | None, wall: Clock, monotonic: Callable[[], float]) -> Clock:
    """The worker's clock: the wall clock, or (``--at``) one that starts at ``start`` and
    runs at the wall clock's pace, like ``remind run --at`` for a long-running process."""
    if start is None:
        return wall
    origin = monotonic()
    return lambda: start + timedelta(seconds=monotonic() - origin)
