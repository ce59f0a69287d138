"""The consumer behind ``ctplhub anpr run`` (DESIGN §12).

One session at a time with the broker, reconnected with a doubling back-off (to 30 s)
whenever it is lost. In a session:

- the reads the broker delivers wait in the client's inbox (``broker.Inbox``);
- the batch loop takes up to ``batch_max`` reads or what came within ``batch_s`` of the
  first, drops (and counts) the low-confidence and invalid ones, has the rest decided
  (``AnprAlerts.decide``), publishes the alerts raised (QoS 1), then acknowledges every
  read of the batch. A database that does not answer holds the batch, unacknowledged,
  and it is tried again with back-off until it is decided (or the consumer stops: the
  broker delivers the reads again at the next session);
- a sweeper publishes, every ``sweep_s``, the alerts kept but not published (a publish
  lost with the broker, a consumer killed between its commit and its publish), and once
  an hour deletes the alerts older than 30 days.

Order of a batch: commit, publish, acknowledge, mark published. A crash anywhere loses
nothing: before the commit the reads come again; after it their ids are kept, so they
change nothing, and the sweeper publishes what was not. An alert can be published twice
(killed between its publish and its mark): subscribers tell repeats by ``alert_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiomqtt
import structlog

from ctplhub.anpr import metrics
from ctplhub.anpr.broker import (
    Broker,
    Delivered,
    ack,
    alerts_topic,
    inbox,
    shared_reads_topic,
)
from ctplhub.domain.anpr import Alert, Dropped, DropReason, PlateRead, ReadParser
from ctplhub.services.anpr import AnprAlerts

_log = structlog.get_logger("ctplhub.anpr")

# Younger unpublished alerts are being published by the consumer that raised them.
SWEEP_GRACE = timedelta(seconds=5)
PURGE_EVERY_S = 3_600.0
MAX_BACKOFF_S = 30.0  # the broker's
# The database's: short, since every try after its return may first meet one of the
# pool's broken connections, and alerts wait for it.
MAX_DB_BACKOFF_S = 2.0


def alert_payload(alert: Alert) -> bytes:
    """The §12 alert as published (the same fields as ``POST /v1/alerts`` lists)."""
    return json.dumps(alert.fields(), ensure_ascii=False).encode()


class Consumer:
    def __init__(
        self,
        alerts: AnprAlerts,
        broker: Broker,
        *,
        client_id: str,
        topic_root: str,
        min_confidence: float,
        clock: Callable[[], datetime],
        unavailable: tuple[type[BaseException], ...],
        batch_max: int = 500,
        batch_s: float = 0.02,
        sweep_s: float = 5.0,
    ) -> None:
        self._alerts = alerts
        self._broker = broker
        self._client_id = client_id
        self._root = topic_root
        self._parser = ReadParser(min_confidence)
        self._clock = clock
        self._unavailable = unavailable
        self._batch_max = batch_max
        self._batch_s = batch_s
        self._sweep_s = sweep_s
        self._last_purge = 0.0
        self.connected = asyncio.Event()  # set while a session is up (tests, the demo)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the broker's absence is waited out."""
        wait = 0.5
        while not stop.is_set():
            try:
                client = self._broker.client(
                    self._client_id,
                    persistent=True,
                    max_inflight=1_000,
                )
                async with client:
                    wait = 0.5
                    await client.subscribe(shared_reads_topic(self._root), qos=1)
                    _log.info("anpr_connected", broker=self._broker.host, port=self._broker.port)
                    self.connected.set()
                    await self._session(client, stop)
            except aiomqtt.MqttError as error:
                _log.warning("anpr_broker_unavailable", error=str(error), retry_in_s=wait)
            finally:
                self.connected.clear()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            wait = min(wait * 2, MAX_BACKOFF_S)

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        # Delivered reads wait in the inbox's deque; its event wakes the batch loop.
        # (Waiting on an event, unlike on ``Queue.get`` under a timeout, can never lose
        # a read.) The watcher only ends the session when the connection is lost.
        delivered = inbox(client)
        waiting, arrived = delivered.waiting, delivered.arrived

        async def watch() -> None:
            async for _ in client.messages:
                pass

        tasks = [
            asyncio.create_task(watch()),
            asyncio.create_task(self._sweep(client, stop)),
            asyncio.create_task(self._batches(client, waiting, arrived, stop)),
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:  # let the batch in hand finish, then leave
                batches = tasks[2]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(batches), timeout=10)
            for task in done:
                if task is not stopping and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in (*tasks, stopping):
                task.cancel()
            await asyncio.gather(*tasks, stopping, return_exceptions=True)

    async def _batches(
        self,
        client: aiomqtt.Client,
        waiting: deque[Delivered],
        arrived: asyncio.Event,
        stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            if not waiting:
                arrived.clear()
                try:  # a stop is noticed within a quarter of a second when no read comes
                    await asyncio.wait_for(arrived.wait(), timeout=0.25)
                except TimeoutError:
                    continue
            batch = [waiting.popleft()]
            deadline = time.monotonic() + self._batch_s
            while len(batch) < self._batch_max:
                while waiting and len(batch) < self._batch_max:
                    batch.append(waiting.popleft())
                left = deadline - time.monotonic()
                if left <= 0 or len(batch) >= self._batch_max:
                    break
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), timeout=left)
            if not await self._decide_batch(client, batch, stop):
                return  # stopped while the database was away: the reads come again

    async def _decide_batch(
        self, client: aiomqtt.Client, batch: Sequence[Delivered], stop: asyncio.Event
    ) -> bool:
        now = self._clock()
        parse = self._parser.parse
        reads: list[PlateRead] = []
        dropped: Counter[DropReason] = Counter()
        metrics.READS.inc(len(batch))
        for message in batch:
            parsed = parse(message.payload, now)
            if isinstance(parsed, Dropped):
                dropped[parsed.reason] += 1
            else:
                reads.append(parsed)
        for reason, count in dropped.items():
            metrics.DROPPED.labels(reason.value).inc(count)
        raised: list[Alert] = []
        if reads:
            wait = 0.2
            while True:
                try:
                    decided = await self._alerts.decide(reads)
                    break
                except self._unavailable as error:
                    _log.warning(
                        "database_unavailable", step="decide", error=type(error).__name__,
                        reads=len(reads), retry_in_s=wait,
                    )  # fmt: skip
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=wait)
                    if stop.is_set():
                        return False
                    wait = min(wait * 2, MAX_DB_BACKOFF_S)
            metrics.CHECKED.labels("covered").inc(decided.covered)
            metrics.CHECKED.labels("uncovered").inc(decided.uncovered)
            metrics.ALERTS.inc(len(decided.alerts))
            raised = decided.alerts
        _log.debug("anpr_batch", reads=len(batch), alerts=len(raised))
        await self._publish(client, raised)
        for message in batch:
            ack(client, message)
        if raised:
            await self._mark(raised)
        return True

    async def _publish(self, client: aiomqtt.Client, alerts: Sequence[Alert]) -> None:
        if alerts:
            await asyncio.gather(
                *(
                    client.publish(alerts_topic(self._root, a.region_code), alert_payload(a), qos=1)
                    for a in alerts
                )
            )
            metrics.PUBLISHED.inc(len(alerts))

    async def _mark(self, alerts: Sequence[Alert]) -> None:
        try:
            await asyncio.to_thread(self._alerts.mark_published, [a.alert_id for a in alerts])
        except self._unavailable as error:  # the sweeper publishes them again later
            _log.warning("alerts_not_marked", error=type(error).__name__, alerts=len(alerts))

    async def _sweep(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._sweep_once(client)
            except self._unavailable as error:
                _log.warning("database_unavailable", step="sweep", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._sweep_s)

    async def _sweep_once(self, client: aiomqtt.Client) -> None:
        while True:
            pending = await asyncio.to_thread(self._alerts.unpublished, older_than=SWEEP_GRACE)
            if not pending:
                break
            await self._publish(client, pending)
            await asyncio.to_thread(self._alerts.mark_published, [a.alert_id for a in pending])
            _log.info("alerts_swept", published=len(pending))
        if time.monotonic() - self._last_purge >= PURGE_EVERY_S or not self._last_purge:
            purged = await asyncio.to_thread(self._alerts.purge)
            self._last_purge = time.monotonic()
            if purged:
                _log.info("alerts_purged", deleted=purged)
