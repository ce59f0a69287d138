"""``ctplhub match [--at T] [--region-prefix P] [--json]`` (DESIGN §8, §11): the daily
match of the vehicle register against cover, for cron and tests.

It counts the uninsured list of the region (the whole country by default) by the list's
rule and each insurer's unmatched list, both set-wise in SQL
(``store/repositories/match_counts.py``), and prints the counts:
``{"at", "region_prefix", "uninsured": {"total", "by_region"}, "unmatched": {"total",
"by_insurer": {code: {"vin_not_registered", "plate_differs"}}}}``. Nothing is written:
the lists are computed from the register and the policies whenever they are asked for
(docs/DECISIONS.md, "Vehicle register and daily match").

``ctplhub match --status`` shows instead the last days' scheduled matches, the ones
``ctplhub worker`` runs by itself (``services/match_schedule.py``): each day's instant,
status, duration and counts, ``{"runs": [...]}`` newest first.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ctplhub.bootstrap import Container
from ctplhub.cli.common import JsonFlag, console, fail, open_container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, format_optional, parse_instant
from ctplhub.domain.register import region_prefix
from ctplhub.services.enforcement import MatchReport
from ctplhub.services.match_schedule import MatchRun


def report_json(report: MatchReport) -> dict[str, Any]:
    unmatched = report.unmatched_by_insurer
    return {
        "at": format_instant(report.at),
        "region_prefix": report.region_prefix,
        "uninsured": {
            "total": sum(report.uninsured_by_region.values()),
            "by_region": dict(sorted(report.uninsured_by_region.items())),
        },
        "unmatched": {
            "total": sum(sum(counts.values()) for counts in unmatched.values()),
            "by_insurer": dict(sorted(unmatched.items())),
        },
    }


def run_json(run: MatchRun) -> dict[str, Any]:
    return {
        "run_date": run.run_date,
        "at": format_instant(run.at),
        "status": run.status,
        "attempts": run.attempts,
        "started_at": format_instant(run.started_at),
        "finished_at": format_optional(run.finished_at),
        "duration_s": None if run.duration_s is None else round(run.duration_s, 3),
        "uninsured": run.uninsured,
        "unmatched": run.unmatched,
        "counts": run.counts,
        "error": run.error,
    }


def _show_status(container: Container, as_json: bool) -> None:
    assert container.match_schedule is not None
    runs = [run_json(r) for r in container.match_schedule.status()]
    if as_json:
        print(json.dumps({"runs": runs}, ensure_ascii=False))
        return
    if not runs:
        console.print("no scheduled match has run yet")
    for r in runs:
        took = "" if r["duration_s"] is None else f" in {r['duration_s']:.1f} s"
        figures = (
            f": {r['uninsured']:,} uninsured, {r['unmatched']:,} unmatched"
            if r["status"] == "done"
            else f" ({r['error']})"
            if r["error"]
            else ""
        )
        console.print(f"{r['run_date']} at {r['at']}: {r['status']}{took}{figures}")


def _run(container: Container, at: datetime, prefix: str, bar: Progress) -> MatchReport:
    task = bar.add_task("uninsured vehicles counted", total=None)

    async def go() -> MatchReport:
        await container.reader.open()
        try:
            return await container.enforcement.match(
                at, prefix, progress=lambda done: bar.update(task, completed=done)
            )
        finally:
            await container.reader.close()

    report = asyncio.run(go())
    bar.update(task, total=1, completed=1, description="matched")
    return report


def match_command(
    at: Annotated[
        str | None,
        typer.Option("--at", help="The match's instant (RFC 3339 with offset); default now."),
    ] = None,
    prefix: Annotated[
        str,
        typer.Option("--region-prefix", help="Leading digits of the region code, e.g. 3205."),
    ] = "",
    status: Annotated[
        bool,
        typer.Option("--status", help="Show the last days' scheduled matches instead."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Match the vehicle register against cover; print the counts (DESIGN §11)."""
    if status:
        with open_container() as container:
            _show_status(container, as_json)
        return
    try:
        with open_container() as container:
            instant = parse_instant(at, "at") if at is not None else container.enforcement.now()
            checked = region_prefix(prefix)
            bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,}"),
                TimeElapsedColumn(),
                console=console,
                disable=as_json,
            )
            with bar:
                report = _run(container, instant, checked, bar)
    except DomainError as error:
        fail(error, as_json)
        return
    payload = report_json(report)
    if as_json:
        print(json.dumps(payload, ensure_ascii=False))
        return
    console.print(
        f"at {payload['at']}: {payload['uninsured']['total']:,} registered vehicles uninsured"
        f" under region {prefix or '(all)'}; {payload['unmatched']['total']:,} policies unmatched"
    )
    for region, count in payload["uninsured"]["by_region"].items():
        console.print(f"  {region}: {count:,} uninsured")
    for code, counts in payload["unmatched"]["by_insurer"].items():
        console.print(
            f"  {code}: {counts['vin_not_registered']:,} VIN not registered, "
            f"{counts['plate_differs']:,} plate differs"
        )
