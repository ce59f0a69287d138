"""``ctplhub anpr run`` and ``ctplhub anpr simulate`` (DESIGN §12, docs/anpr.md).

``run`` consumes the cameras' reads until SIGTERM or SIGINT (``anpr/consumer.py``); a
broker or a database that does not answer is waited out, at start as well as later.
``--metrics-port`` serves its Prometheus counters on 127.0.0.1, like ``ctplhub worker``.
``simulate`` publishes reads of the demo fleet (``anpr/simulate.py``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
import structlog
import typer
from sqlalchemy.exc import DBAPIError, OperationalError

from ctplhub.anpr.broker import Broker
from ctplhub.anpr.consumer import Consumer
from ctplhub.anpr.simulate import ReadMaker, fleet_pools, publish_reads
from ctplhub.cli.common import console
from ctplhub.cli.worker import _container_when_ready
from ctplhub.config import Settings, load_settings
from ctplhub.logs import configure_logging, flush_logs, flush_periodically
from ctplhub.notify.delivery import run_loop

# What "the database does not answer" looks like on the answer path (the readers speak
# psycopg and sqlite3 directly) and through SQLAlchemy (the alerts' store).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)

anpr_app = typer.Typer(help="Roadside cameras: consume plate reads, raise alerts (DESIGN §12).")
_log = structlog.get_logger("ctplhub.anpr")


def broker_of(settings: Settings) -> Broker:
    return Broker.from_url(settings.mqtt_url, settings.mqtt_username, settings.mqtt_password)


@anpr_app.command("run")
def run(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1 at this port.")
    ] = None,
) -> None:
    """Consume the cameras' reads and publish alerts until SIGTERM."""
    settings = load_settings()
    configure_logging(settings.log_level)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    try:
        run_loop(_serve(settings))
    finally:
        flush_logs()


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    flusher = asyncio.create_task(flush_periodically())
    try:
        container = await _container_when_ready(settings, stop)
        if container is None or container.anpr is None:
            return
        # The cameras' consumer is not a server: it leaves verify jobs to those.
        await container.open_resources(run_jobs=False)
        try:
            consumer = Consumer(
                container.anpr,
                broker_of(settings),
                client_id=settings.anpr_client_id,
                topic_root=settings.mqtt_topic_root,
                min_confidence=settings.anpr_min_confidence,
                clock=lambda: datetime.now(UTC),
                unavailable=UNAVAILABLE,
                batch_max=settings.anpr_batch_max,
                batch_s=settings.anpr_batch_ms / 1000,
            )
            _log.info("anpr_starting", client_id=settings.anpr_client_id)
            await consumer.run(stop)
        finally:
            await container.close_resources()
            container.close()
    finally:
        flusher.cancel()


def _demo_state(settings: Settings) -> dict[str, Any]:
    path = settings.home / "demo.json"
    return json.loads(path.read_text()) if path.exists() else {}


@anpr_app.command("simulate")
def simulate(
    cameras: Annotated[int, typer.Option(min=1, max=10_000, help="Cameras reading.")] = 20,
    rate: Annotated[float, typer.Option(min=0.1, help="Reads per second, all cameras.")] = 50,
    uninsured_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share of reads of uncovered vehicles.")
    ] = 0.02,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (default: until Ctrl-C).")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many reads.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the reads chosen.")] = 1,
    vehicles: Annotated[
        int | None, typer.Option(help="Fleet size (default: the loaded demo's, else 20,000).")
    ] = None,
) -> None:
    """Publish realistic plate reads of the demo fleet (OCR errors, low confidence,
    repeats) to the broker of CTPLHUB_MQTT_URL."""
    settings = load_settings()
    state = _demo_state(settings)
    size = vehicles or int(state.get("vehicles") or 20_000)
    anchored = datetime.fromisoformat(state["now"]) if "now" in state else datetime.now(UTC)
    covered, uncovered = fleet_pools(size, anchored)
    maker = ReadMaker(
        covered,
        uncovered,
        cameras=cameras,
        uninsured_share=uninsured_share,
        seed=seed,
        clock=lambda: datetime.now(UTC),
    )

    async def go() -> dict[str, int]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        tally = await publish_reads(
            broker_of(settings),
            settings.mqtt_topic_root,
            maker,
            rate=rate,
            count=count,
            duration=duration,
            stop=stop,
        )
        return dict(tally)

    console.print(
        f"publishing {rate:g} reads/s from {cameras} cameras to {settings.mqtt_url} "
        f"({uninsured_share:.0%} uninsured; fleet of {size:,})"
    )
    print(json.dumps(asyncio.run(go()), sort_keys=True))


if __name__ == "__main__":  # python -m ctplhub.cli.anpr run (tests; `ctplhub anpr` otherwise)
    anpr_app()
