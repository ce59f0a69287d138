"""Concurrent coverage reads share database round trips (PostgreSQL).

Under load, every answer waits for one statement; most of a lone statement's cost on the
server is the driver's and the kernel's work per round trip, not the lookup. So the
questions asked while other reads are in flight go out together in the next statement,
and each takes its vehicles from the shared snapshot.

That is exact, not an approximation: the statement returns the *complete* history of
every vehicle that ever carried a plate asked for (or has a VIN asked for), and
``VehicleSnapshot`` resolves a plate only among the vehicles that ever carried it. Adding
other plates to a read adds other vehicles, which no question about this plate looks at.
A property test holds a batched answer equal to a read of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ctplhub.domain.vehicle import VehicleSnapshot
from ctplhub.services.ports import ReadPart

Read = Callable[[list[str], list[str]], Awaitable[VehicleSnapshot]]
_Waiting = tuple[Sequence[str], Sequence[str], "asyncio.Future[VehicleSnapshot]"]


class ReadBatcher:
    """Coalesces small concurrent reads into few round trips.

    A read waits for the next turn of the event loop, then goes out with every question
    asked meanwhile, up to ``max_batch`` plates and VINs; at most ``max_in_flight`` reads
    run at once, and questions asked while they run make up the next one. Alone, a
    question costs one turn of the loop.

    The question that opens a batch leads it: after that turn it runs the read in its own
    task, and the others take their vehicles from it. A read in a task of its own would
    start a turn later: under load a turn is a few hundred microseconds of other
    requests' work, and every question of the batch waited for it (docs/PERFORMANCE.md
    §20). Questions left over when reads are in flight go out in a task when one ends.
    A leader cancelled before its read is over hands its batch back: the others are not
    cancelled with it.

    Batches are capped (16): with 32 connections, uncapped batches of ~30 made every
    request wait on the same long read and left the server idle 6 % of the time
    (docs/PERFORMANCE.md).
    """

    def __init__(self, read: Read, *, max_in_flight: int, max_batch: int = 16) -> None:
        self._read = read
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._waiting: deque[_Waiting] = deque()
        self._in_flight = 0
        self._scheduled = False  # a ``_dispatch`` is due
        self._leading = False  # a leader is gathering its batch
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        future: asyncio.Future[VehicleSnapshot] = asyncio.get_running_loop().create_future()
        mine: _Waiting = (plates, vins, future)
        self._waiting.append(mine)
        if self._scheduled or self._leading or self._in_flight >= self._max_in_flight:
            return await future  # a batch being gathered, or the end of a read, takes it
        self._leading = True
        try:
            await asyncio.sleep(0)  # one turn: the questions asked meanwhile join
        except BaseException:
            self._leading = False
            self._drop(mine)
            self._schedule()
            raise
        self._leading = False
        # A lane is still free: while a leader gathers, no ``_dispatch`` is due or runs
        # (``_schedule`` waits for it), and nothing else takes one.
        batch = self._take()
        self._in_flight += 1
        self._schedule()  # questions beyond this batch's cap
        await self._run(batch, leader=mine)
        return future.result()

    def _drop(self, waiting: _Waiting) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiting)
        waiting[2].cancel()

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._waiting and (
            not batch
            or size + len(self._waiting[0][0]) + len(self._waiting[0][1]) <= self._max_batch
        ):
            waiting = self._waiting.popleft()
            batch.append(waiting)
            size += len(waiting[0]) + len(waiting[1])
        return batch

    def _schedule(self) -> None:
        if (
            not self._scheduled
            and not self._leading
            and self._waiting
            and self._in_flight < self._max_in_flight
        ):
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._take()
            self._in_flight += 1
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting], leader: _Waiting | None = None) -> None:
        """Read ``batch``'s keys and give every waiter the snapshot (or the failure).
        ``leader``: the waiter whose task runs this; when that task is cancelled, the
        other waiters go back to the head of the queue instead of being cancelled."""
        try:
            plates = sorted({plate for plates, _, _ in batch for plate in plates})
            vins = sorted({vin for _, vins, _ in batch for vin in vins})
            snapshot = await self._read(plates, vins)
            for _, _, future in batch:
                if not future.done():  # a waiter whose client went away is cancelled
                    future.set_result(snapshot)
        except Exception as error:  # every waiter left gets the failure, none hangs
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
        except BaseException:
            if leader is None:  # the loop is closing: so are the waiters
                for _, _, future in batch:
                    future.cancel()
            else:  # the leader's request was cancelled: the others are read again
                leader[2].cancel()
                self._waiting.extendleft(
                    reversed([w for w in batch if w is not leader and not w[2].done()])
                )
            raise
        finally:
            self._in_flight -= 1
            self._schedule()


def _ramped(keys: list[str], size: int) -> list[list[str]]:
    """``keys`` in chunks of ``size``, the first two a quarter and a half of it: the
    chunks first in flight share the database's cores, so a small first one reaches the
    caller sooner and its work starts while the others are read (docs/PERFORMANCE.md §18)."""
    chunks: list[list[str]] = []
    start = 0
    for step in (max(size // 4, 1), max(size // 2, 1)):
        if start < len(keys):
            chunks.append(keys[start : start + step])
            start += step
    chunks += [keys[i : i + size] for i in range(start, len(keys), size)]
    return chunks


class BatchedReads:
    """How both readers read: a small read (an owner's question) joins the next batch
    of the event loop's ``ReadBatcher``; a bulk read (a police verify) goes out in chunks,
    ``bulk_at_once`` at a time, and their snapshots are joined."""

    def __init__(
        self,
        read: Read,
        *,
        batch: int,
        in_flight: int,
        chunk: int,
        bulk_at_once: int,
        bulk_read: Read | None = None,
    ) -> None:
        self._read = read
        # A bulk read's chunks: ``bulk_read`` when given (the readers' leaner statement,
        # without the owners' index that only an owner's own question compares).
        self._bulk_read = bulk_read or read
        self._batch = batch
        self._in_flight = in_flight
        self._chunk = chunk
        self._bulk_at_once = bulk_at_once
        # One batcher per event loop: a server has one; tests start an app per client.
        self._batchers: dict[asyncio.AbstractEventLoop, ReadBatcher] = {}

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        """A small read (an owner's question) through the batcher; a bulk one in parts,
        its vehicles' ``owner_index`` None (``VehicleReader``)."""
        if len(plates) + len(vins) <= self._batch:
            return await self._batcher().read(plates, vins)
        return VehicleSnapshot.union([part.snapshot async for part in self.parts(plates, vins)])

    async def parts(self, plates: Sequence[str], vins: Sequence[str]) -> AsyncIterator[ReadPart]:
        """``VehicleReader.vehicle_parts``: a small read is one part (through the batcher);
        a bulk read goes out in chunks, ``bulk_at_once`` at a time, each handed over as
        soon as it is read, so the caller's work on one overlaps the database's on the
        next (bulk verify: docs/PERFORMANCE.md). Chunks still in flight when the caller
        stops early are cancelled."""
        if len(plates) + len(vins) <= self._batch:
            yield ReadPart(plates, vins, await self._batcher().read(plates, vins))
            return
        # Sorted, so that each chunk's keys are near one another in the indexes (unsorted
        # chunks cost PostgreSQL a tenth more); deduplicated keeping the order given, so
        # keys that come sorted (bulk verify sorts its own) cost a pass, not a new sort.
        unique_plates = sorted(dict.fromkeys(plates))
        unique_vins = sorted(dict.fromkeys(vins))
        chunks: list[tuple[list[str], list[str]]] = [
            (part, []) for part in _ramped(unique_plates, self._chunk)
        ]
        chunks += [([], part) for part in _ramped(unique_vins, self._chunk)]
        gate = asyncio.Semaphore(self._bulk_at_once)

        async def read(plates: list[str], vins: list[str]) -> ReadPart:
            async with gate:
                return ReadPart(plates, vins, await self._bulk_read(plates, vins))

        tasks = [asyncio.ensure_future(read(p, v)) for p, v in chunks]
        try:
            for done in asyncio.as_completed(tasks):
                yield await done
        finally:
            for task in tasks:
                task.cancel()

    def forget(self) -> None:
        """Drop the running loop's batcher (its loop is ending)."""
        self._batchers.pop(asyncio.get_running_loop(), None)

    def _batcher(self) -> ReadBatcher:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = ReadBatcher(self._read, max_in_flight=self._in_flight, max_batch=self._batch)
            self._batchers[loop] = batcher
        return batcher
