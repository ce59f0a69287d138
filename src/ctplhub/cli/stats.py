"""``ctplhub stats refresh [--json]`` (DESIGN §8, §11): bring the regulators' statistics
up to date with the events received since the last refresh, for cron, tests and the
first build after an upgrade. ``ctplhub worker`` does the same every minute and a
request does it for a small backlog, so this is rarely needed by hand."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated

import typer
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from ctplhub.cli.common import JsonFlag, console, emit, open_container

stats_app = typer.Typer(help="Regulators' statistics (DESIGN §11).")


@stats_app.command("refresh")
def refresh_command(
    settle_s: Annotated[
        float | None,
        typer.Option(
            "--settle-s",
            help="Take only events received this many seconds ago or earlier "
            "(default: 120 on PostgreSQL, 0 on SQLite; 0 once ingest has stopped).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Count the events received since the last refresh into the statistics."""
    settle = None if settle_s is None else timedelta(seconds=settle_s)
    with open_container() as container:
        stats = container.stats
        assert stats is not None  # always wired by bootstrap
        bar = Progress(
            TextColumn("events counted {task.completed:,}"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        )
        started = time.perf_counter()
        with bar:
            task = bar.add_task("refresh", total=None)
            report = stats.refresh(
                settle=settle, progress=lambda done: bar.update(task, completed=done)
            )
        elapsed = round(time.perf_counter() - started, 3)
    payload = {
        "events": report.events,
        "vehicles": report.vehicles,
        "last_event_id": report.last_event_id,
        "complete": report.complete,
        "elapsed_s": elapsed,
    }
    emit(
        payload,
        as_json,
        f"{report.events:,} events counted ({report.vehicles:,} vehicles recomputed) "
        f"in {elapsed} s; watermark at event {report.last_event_id}",
    )
