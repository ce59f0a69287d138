"""``ctplhub worker`` (DESIGN §7, §8): the long-running reminder process.

Every minute the decide step (then the escalation of overdue disputes, DESIGN §10, and
the data-quality flags of what was stored since the last minute),
delivery all the time (``notify/worker.py``), a clean stop
on SIGTERM or SIGINT (sends in flight finish and are recorded, unstarted claims are given
back), and a database that does not answer is waited out, at start as well as later.
With ``--jobs`` (the default) it also answers verify jobs (DESIGN §11), sharing them with
``ctplhub serve`` and other workers chunk by chunk (``services/verify_job_runner.py``).
Once a minute it also counts the events received since into the regulators' statistics,
deletes finished verify jobs past their retention and, at the hour set by
``CTPLHUB_MATCH_HOUR`` (Beijing time), runs the daily match, one worker a day however
many run (``services/match_schedule.py``), and stores the day's lapse forecast by group
once a Beijing day has begun (``services/forecast.py``, one worker's copy kept).
``--at`` starts the run's clock at an instant of your choosing (it then runs at the
wall clock's pace), like ``ctplhub remind run --at``; ``--metrics-port`` serves the
worker's Prometheus counters on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from datetime import UTC, datetime
from typing import Annotated

import structlog
import typer
from sqlalchemy.exc import DBAPIError, OperationalError

from ctplhub.bootstrap import Container, build_container
from ctplhub.cli.common import console
from ctplhub.config import Settings, load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import parse_instant
from ctplhub.logs import configure_logging, flush_logs, flush_periodically
from ctplhub.notify.delivery import Clock, Delivery, run_loop
from ctplhub.notify.metrics import count_due
from ctplhub.notify.wiring import build_channels, delivery_options
from ctplhub.notify.worker import Decide, Worker, running_clock

# What "the database does not answer" looks like through SQLAlchemy: a refused or lost
# connection, a locked SQLite file, a server shutting down (psycopg's AdminShutdown).
UNAVAILABLE: tuple[type[BaseException], ...] = (OperationalError,)

_log = structlog.get_logger("ctplhub.worker")


def worker(
    at: Annotated[
        str | None,
        typer.Option(help="Start the run's clock at this instant (RFC 3339); default: now."),
    ] = None,
    decide: Annotated[
        bool,
        typer.Option(
            "--decide/--no-decide",
            help="Also run the decide step every minute (--no-decide: deliver only).",
        ),
    ] = True,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1 at this port.")
    ] = None,
    jobs: Annotated[
        bool,
        typer.Option("--jobs/--no-jobs", help="Also answer queued verify jobs (DESIGN §11)."),
    ] = True,
) -> None:
    """Decide reminders every minute and deliver the outbox until SIGTERM."""
    try:
        start = parse_instant(at, "at") if at is not None else None
    except DomainError as error:
        console.print(f"[red]error[/red] [bold]{error.code}[/bold]: {error.message}")
        raise typer.Exit(2) from None
    settings = load_settings()
    configure_logging(settings.log_level)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    try:
        run_loop(_serve(settings, start, decide, jobs))
    finally:
        flush_logs()


async def _serve(settings: Settings, start: datetime | None, decide: bool, jobs: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    clock = running_clock(start, lambda: datetime.now(UTC), time.monotonic)
    flusher = asyncio.create_task(flush_periodically())  # log lines of an idle worker
    try:
        await _work(settings, stop, clock, decide, jobs)
    finally:
        flusher.cancel()


async def _work(
    settings: Settings, stop: asyncio.Event, clock: Clock, decide: bool, jobs: bool
) -> None:
    container = await _container_when_ready(settings, stop)
    if container is None:
        return
    try:
        delivery = Delivery(
            container.reminder_outbox(),
            build_channels(settings, container.webhook_key),
            options=delivery_options(settings),
        )
        reminders = container.reminders
        disputes = container.disputes

        def decide_and_count(at: datetime) -> object:
            decision = reminders.decide(at)
            count_due(decision.queued)  # the Prometheus "due" counter (notify/metrics.py)
            # Overdue disputes go to the regulators in the same minute's pass; their
            # notices to owners join the outbox this worker delivers. No server flusher
            # runs in a worker: the escalations' access-log entries are written here.
            if disputes is not None and disputes.escalate(at).escalated:
                container.access_log.flush_now()
            # Then the data-quality flags of what was stored since the last pass.
            if container.quality_flags is not None:
                flagged = container.quality_flags.flag_pending()
                if flagged.examined:
                    _log.info("quality_flags", examined=flagged.examined, flagged=flagged.flagged)
            return decision

        decide_step: Decide | None = decide_and_count if decide else None
        # The coverage reader open and the access log flushed in the background, as in
        # the server, for the verify jobs and the daily match.
        await container.reader.open()
        await container.access_log.start()
        try:
            work = [Worker(delivery, clock, decide=decide_step, unavailable=UNAVAILABLE).run(stop)]
            if jobs and container.job_runner is not None:
                work.append(container.job_runner.run(stop))
            work.append(housekeeping(container, stop, clock))
            work.append(_refresh_stats(container, stop))
            await asyncio.gather(*work)
        finally:
            await delivery.aclose()
            await container.access_log.stop()
            await container.reader.close()
    finally:
        container.close()


async def housekeeping(
    container: Container, stop: asyncio.Event, clock: Clock, every_s: float = 60.0
) -> None:
    """Once a minute until ``stop``: finished verify jobs past their retention deleted,
    the daily match run when due (``CTPLHUB_MATCH_DAILY``), and the day's lapse forecast
    stored when it is not yet. A failure is logged by
    its error type and tried again the next minute (a failed match after its retry)."""
    schedule = container.match_schedule if container.settings.match_daily else None
    while not stop.is_set():
        now = clock()
        if container.verify_jobs is not None:
            try:
                purged = await asyncio.to_thread(container.verify_jobs.purge, now)
                if purged:
                    _log.info("verify_jobs_purged", jobs=purged)
            except Exception as error:
                _log.warning("verify_jobs_purge_failed", error=type(error).__name__)
        if schedule is not None:
            try:
                run = await schedule.run_if_due(now)
                if run is not None:
                    _log.info(
                        "daily_match_done",
                        run_date=run.run_date,
                        duration_s=run.duration_s,
                        uninsured=run.uninsured,
                        unmatched=run.unmatched,
                    )
            except Exception as error:
                _log.warning("daily_match_failed", error=type(error).__name__)
        try:
            stored = await asyncio.to_thread(container.forecast.refresh_if_due, now)
            if stored is not None:
                _log.info(
                    "forecast_stored",
                    as_of=stored.as_of.isoformat(),
                    vehicles=stored.vehicles,
                )
        except Exception as error:
            _log.warning("forecast_store_failed", error=type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


STATS_EVERY_S = 60.0
STATS_PASS_EVENTS = 100_000


async def _refresh_stats(container: Container, stop: asyncio.Event) -> None:
    """The regulators' statistics, refreshed every minute from the events received
    since the last pass (DESIGN §11; ``services/stats.py``); a database that does not
    answer is tried again at the next pass."""
    stats = container.stats
    if stats is None:
        return
    while not stop.is_set():
        try:
            # A bounded pass, so that a stop never waits for a first build of millions.
            report = await asyncio.to_thread(stats.refresh, max_events=STATS_PASS_EVENTS)
            if report.events:
                _log.info("stats_refreshed", events=report.events, vehicles=report.vehicles)
            if not report.complete:
                continue
        except UNAVAILABLE as error:
            _log.warning("database_unavailable", step="stats", error=type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=STATS_EVERY_S)


async def _container_when_ready(settings: Settings, stop: asyncio.Event) -> Container | None:
    """The wired container, once the database answers (a worker may start before it)."""
    wait = 1.0
    while not stop.is_set():
        container: Container | None = None
        try:
            container = await asyncio.to_thread(build_container, settings)
            await asyncio.to_thread(_ping, container)
            return container
        except (OperationalError, DBAPIError) as error:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()
            _log.warning(
                "database_unavailable", step="start", error=type(error).__name__, retry_in_s=wait
            )
        try:
            await asyncio.wait_for(stop.wait(), timeout=wait)
        except TimeoutError:
            wait = min(wait * 2, 30.0)
    return None


def _ping(container: Container) -> None:
    from sqlalchemy import text

    with container.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


if __name__ == "__main__":  # python -m ctplhub.cli.worker (tests; `ctplhub worker` otherwise)
    typer.run(worker)
