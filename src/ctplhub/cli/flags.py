"""``ctplhub flags run [--json]``: the data-quality flags pass (docs/DECISIONS.md,
"Data-quality flags"). ``ctplhub worker`` runs it every minute; this command is for cron,
operators and tests. It flags every event the ledger gained since the last pass and is
safe beside a running worker (the watermark moves by compare-and-set). Prints
``{"examined", "flagged", "watermark"}``.
"""

from __future__ import annotations

import typer

from ctplhub.cli.common import JsonFlag, emit, open_container

flags_app = typer.Typer(help="Data-quality flags on accepted events.")


@flags_app.command("run")
def run(as_json: JsonFlag = False) -> None:
    """Flag the events stored since the last pass."""
    with open_container() as container:
        quality = container.quality_flags
        if quality is None:  # pragma: no cover - always wired by bootstrap
            raise typer.Exit(2)
        done = quality.flag_pending()
    emit(
        {"examined": done.examined, "flagged": done.flagged, "watermark": done.watermark},
        as_json,
        f"{done.examined} events examined, {done.flagged} flags written "
        f"(next ledger index {done.watermark})",
    )
