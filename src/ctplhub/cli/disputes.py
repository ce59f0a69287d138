"""``ctplhub disputes escalate [--at T] [--json]`` (DESIGN §10): escalate the open
disputes past their due date at ``T`` (default now). ``ctplhub worker`` does the same
every minute; this command is for cron, operators and tests. Idempotent: a second run at
the same instant escalates nothing. Prints ``{"at", "escalated", "notices",
"dispute_ids"}``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ctplhub.cli.common import JsonFlag, emit, fail, open_container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, parse_instant

disputes_app = typer.Typer(help="Owners' disputes: escalate the overdue ones to regulators.")


@disputes_app.command("escalate")
def escalate(
    at: Annotated[
        str | None,
        typer.Option("--at", help="The pass's instant (RFC 3339 with offset); default now."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Escalate every open dispute whose due date has passed at --at."""
    with open_container() as container:
        disputes = container.disputes
        if disputes is None:  # pragma: no cover - always wired by bootstrap
            raise typer.Exit(2)
        try:
            instant = parse_instant(at, "at") if at is not None else disputes.now()
            tally = disputes.escalate(instant)
        except DomainError as error:
            fail(error, as_json)
    emit(
        {
            "at": format_instant(instant),
            "escalated": tally.escalated,
            "notices": tally.notices,
            "dispute_ids": list(tally.dispute_ids),
        },
        as_json,
        f"at {format_instant(instant)}: {tally.escalated} disputes escalated, "
        f"{tally.notices} owner notices queued",
    )
