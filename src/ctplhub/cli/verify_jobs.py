"""``ctplhub verify-jobs`` (DESIGN §11).

- ``purge [--at T] [--json]``: delete the verify jobs that ended more than
  ``CTPLHUB_VERIFY_JOB_RETENTION_DAYS`` before ``T`` (default now), their uploaded rows
  and results with them. ``ctplhub worker`` does the same every minute; this is for cron,
  operators and tests. Prints ``{"at", "retention_days", "purged"}``.
- ``run [--parent PID]``: answer queued jobs until SIGTERM. ``ctplhub serve`` starts one
  beside itself, so that a job's chunks never hold the event loop that answers queries
  (docs/DECISIONS.md, "Verify jobs"); it stops when its parent is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Annotated

import typer

from ctplhub.bootstrap import build_container
from ctplhub.cli.common import JsonFlag, emit, fail, open_container
from ctplhub.config import Settings, load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, parse_instant
from ctplhub.logs import configure_logging, flush_logs
from ctplhub.notify.delivery import run_loop

verify_jobs_app = typer.Typer(
    help="Verify jobs: answer the queued ones, delete the finished ones past retention."
)


@verify_jobs_app.command("purge")
def purge(
    at: Annotated[
        str | None,
        typer.Option("--at", help="The purge's instant (RFC 3339 with offset); default now."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete finished verify jobs (rows and results) past their retention at --at."""
    with open_container() as container:
        jobs = container.verify_jobs
        if jobs is None:  # pragma: no cover - always wired by bootstrap
            raise typer.Exit(2)
        try:
            instant = parse_instant(at, "at") if at is not None else container.enforcement.now()
        except DomainError as error:
            fail(error, as_json)
        purged = jobs.purge(instant)
        days = jobs.retention.days
    emit(
        {"at": format_instant(instant), "retention_days": days, "purged": purged},
        as_json,
        f"at {format_instant(instant)}: {purged} verify jobs older than {days} days deleted",
    )


@verify_jobs_app.command("run")
def run(
    parent: Annotated[
        int | None, typer.Option(help="Stop when the process with this id is gone.")
    ] = None,
) -> None:
    """Answer queued verify jobs, chunk by chunk, until SIGTERM."""
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        run_loop(_answer(settings, parent))
    finally:
        flush_logs()


async def _answer(settings: Settings, parent: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    container = await asyncio.to_thread(build_container, settings)
    watch = asyncio.create_task(_orphaned(parent, stop)) if parent is not None else None
    try:
        assert container.job_runner is not None
        await container.reader.open()
        await container.access_log.start()
        try:
            await container.job_runner.run(stop)
        finally:
            await container.access_log.stop()
            await container.reader.close()
    finally:
        if watch is not None:
            watch.cancel()
        container.close()


async def _orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``parent`` has ended (a server killed with SIGKILL leaves its
    runner to the init process, whose id ``getppid`` then gives)."""
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
