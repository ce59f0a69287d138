"""The loop that answers verify jobs (DESIGN §11), chunk after chunk, until stopped.

``ctplhub serve`` starts one in the background of its event loop (``start``/``stop``,
from the app's lifespan); ``ctplhub worker`` runs one next to reminder delivery
(``run``). Any number share the work through the store's claims. A runner with nothing to
do rests ``idle_s`` between looks; a failure (a database away) is waited out, 1, 2, 4 …
up to 30 s, and the chunk in hand goes back to the queue, to this runner or another.
A stop lets the chunk in progress finish and be committed; a runner killed mid-chunk
loses only that chunk's work, which the next claim after its lease does again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog

from ctplhub.services.verify_jobs import VerifyJobs

_log = structlog.get_logger("ctplhub.verify_jobs")


class VerifyJobRunner:
    def __init__(
        self,
        jobs: VerifyJobs,
        *,
        worker_id: str | None = None,
        idle_s: float = 1.0,
        longest_wait_s: float = 30.0,
    ) -> None:
        self._jobs = jobs
        self.worker_id = worker_id or f"jobs-{uuid.uuid4().hex[:16]}"
        self._idle_s = idle_s
        self._longest_wait_s = longest_wait_s
        self.chunks = 0  # answered by this runner
        # One background loop per event loop that started one (a container may serve two
        # apps at once, as the access log's flusher allows).
        self._running: dict[
            asyncio.AbstractEventLoop, tuple[asyncio.Task[None], asyncio.Event]
        ] = {}

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                worked = await self._jobs.run_once(self.worker_id)
            except Exception as error:
                failures += 1
                wait = min(2.0 ** (failures - 1), self._longest_wait_s)
                _log.warning("verify_job_chunk_failed", error=type(error).__name__, retry_in_s=wait)
                await _rest(stop, wait)
                continue
            failures = 0
            if worked:
                self.chunks += 1
            else:
                await _rest(stop, self._idle_s)

    def start(self) -> None:
        """Run in the background of the running event loop (the server's); once per
        loop (a second start would leave a runner that no ``stop`` reaches)."""
        if asyncio.get_running_loop() in self._running:
            return
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="verify-job-runner")
        self._running[asyncio.get_running_loop()] = (task, stop)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Let this loop's chunk in progress finish (up to ``timeout_s``), then end."""
        running = self._running.pop(asyncio.get_running_loop(), None)
        if running is None:
            return
        task, stop = running
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=timeout_s)
        except TimeoutError:  # its lease brings the chunk back to the next runner
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _rest(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
