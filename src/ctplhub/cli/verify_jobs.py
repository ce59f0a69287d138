"""``ctplhub verify-jobs purge [--at T] [--json]`` (DESIGN §11): delete the verify jobs
that ended more than ``CTPLHUB_VERIFY_JOB_RETENTION_DAYS`` before ``T`` (default now),
their uploaded rows and results with them. ``ctplhub worker`` does the same every minute;
this is for cron, operators and tests. Prints ``{"at", "retention_days", "purged"}``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ctplhub.cli.common import JsonFlag, emit, fail, open_container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, parse_instant

verify_jobs_app = typer.Typer(help="Verify jobs: delete the finished ones past retention.")


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
