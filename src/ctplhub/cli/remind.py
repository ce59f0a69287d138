"""``ctplhub remind …`` (DESIGN §7, §8): one reminder pass for cron and tests, and the
outbox's dead letters for operators.

``remind run --at T`` decides what is due at ``T`` (writing it to the outbox in the
deciding transaction), then delivers what is due at ``T`` through ``ctplhub.notify``;
every clock of the pass is ``T``. It prints ``{"due", "sent", "deferred", "failed"}``:
``due`` counts the pending reminders whose rule was due by ``T``, ``deferred`` those held
back (quiet hours, or given back by the delivery), ``failed`` the tries that failed (they
are retried later, or become dead letters).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ctplhub.cli.common import JsonFlag, console, emit, fail, open_container
from ctplhub.domain.errors import DomainError, ValidationFailed
from ctplhub.domain.instants import format_instant, format_optional, parse_instant
from ctplhub.services.reminder_ports import DeliveryTally
from ctplhub.services.reminders import DecisionTally

remind_app = typer.Typer(help="Renewal reminders: run a pass, list and re-drive dead letters.")

AtOption = Annotated[
    str | None,
    typer.Option("--at", help="The pass's instant (RFC 3339 with offset); default now."),
]


def pass_summary(decision: DecisionTally, delivery: DeliveryTally | None) -> dict[str, int]:
    """The four figures ``remind run`` prints."""
    return {
        "due": decision.due,
        "sent": delivery.sent if delivery else 0,
        "deferred": decision.deferred + (delivery.deferred if delivery else 0),
        "failed": delivery.failed if delivery else 0,
    }


@remind_app.command("run")
def run(at: AtOption = None, as_json: JsonFlag = False) -> None:
    """Decide the reminders due at --at and send them."""
    with open_container() as container:
        try:
            instant = parse_instant(at, "at") if at is not None else container.reminders.now()
            decision = container.reminders.decide(instant)
        except DomainError as error:
            fail(error, as_json)
        delivery = None
        if decision.due > decision.deferred:
            delivery = container.reminder_delivery()(instant)
    summary = pass_summary(decision, delivery)
    emit(
        summary,
        as_json,
        f"at {format_instant(instant)}: {summary['due']} due, {summary['sent']} sent, "
        f"{summary['deferred']} deferred, {summary['failed']} failed "
        f"({decision.queued} queued now, {decision.alerts} cancellation alerts, "
        f"{decision.skipped} older reminders skipped)",
    )


@remind_app.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Reminders that ran out of retries, newest failure first (addresses masked)."""
    with open_container() as container:
        letters = container.reminder_outbox().dead_letters(limit)
    if as_json:
        rows = [
            {
                "id": d.id,
                "channel": d.channel,
                "address": d.address_masked,
                "kind": d.kind,
                "plate": d.plate,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "due_at": format_instant(d.due_at),
                "failed_at": format_optional(d.failed_at),
            }
            for d in letters
        ]
        print(json.dumps({"dead_letters": rows}, ensure_ascii=False))
        return
    table = Table("id", "channel", "address", "kind", "plate", "attempts", "last error", "failed")
    for d in letters:
        table.add_row(
            str(d.id),
            d.channel,
            d.address_masked,
            d.kind,
            d.plate,
            str(d.attempts),
            d.last_error or "",
            format_optional(d.failed_at) or "",
        )
    console.print(table if letters else "no dead letters")


@remind_app.command("redrive")
def redrive(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letters' ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    at: AtOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send dead letters again: pending, due at --at, their tries counted from zero."""
    with open_container() as container:
        try:
            if bool(ids) == all_:
                raise ValidationFailed("give dead letters' ids, or --all (not both)")
            chosen = None if all_ else [_id(v) for v in ids or ()]
            instant = parse_instant(at, "at") if at is not None else container.reminders.now()
            count = container.reminder_outbox().redrive(chosen, instant)
        except DomainError as error:
            fail(error, as_json)
    emit({"redriven": count}, as_json, f"{count} dead letters pending again")


def _id(value: str) -> int:
    if not value.isdigit():
        raise ValidationFailed(f"{value!r} is not a dead letter's id (a whole number)")
    return int(value)
