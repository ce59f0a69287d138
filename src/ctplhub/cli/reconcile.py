"""``ctplhub reconcile CODE FILE`` (DESIGN §8, §10): an operator compares an insurer's
export (NDJSON ``{"policy_no", "version"}`` lines, or CSV with the header
``policy_no,version``) with what the platform holds, and prints what to resend or
investigate. Exit 0 when the books match, 1 when they differ or the file is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from ctplhub.api.presenters_reconcile import book_diff
from ctplhub.cli.common import JsonFlag, console, fail, open_container
from ctplhub.cli.importer import kind_of
from ctplhub.domain.errors import DomainError
from ctplhub.services.event_lines import count_lines, read_lines
from ctplhub.services.reconcile import ReconcileReport
from ctplhub.services.report_events import RawLine

_SHOWN = 20  # per list, in the text summary; --json prints every policy


def report_json(report: ReconcileReport) -> dict[str, Any]:
    return {
        "insurer_code": report.insurer_code,
        "match": report.match,
        "count": report.insurer.count,
        "digest": report.insurer.digest,
        "platform_count": report.platform.count,
        "platform_digest": report.platform.digest,
        **book_diff(report.diff),
    }


def _counted(lines: Iterator[RawLine], bar: Progress, task: Any) -> Iterator[RawLine]:
    for done, line in enumerate(lines, start=1):
        if done % 5000 == 0:
            bar.update(task, completed=done)
        yield line


def _summary(report: ReconcileReport) -> None:
    verdict = "[green]books match[/green]" if report.match else "[red]books differ[/red]"
    console.print(
        f"{report.insurer_code}: {verdict} — export {report.insurer.count:,} policies, "
        f"platform {report.platform.count:,}"
    )
    diff = report.diff
    sections = (
        ("missing here (resend)", list(diff.missing_here)),
        (
            "version differs (yours → platform's)",
            [f"{d.policy_no}: {d.yours} → {d.ours}" for d in diff.version_differs],
        ),
        ("unknown to you (investigate)", list(diff.unknown_to_you)),
    )
    for title, items in sections:
        console.print(f"  {title}: {len(items):,}")
        for item in items[:_SHOWN]:
            console.print(f"    {item}")
        if len(items) > _SHOWN:
            console.print(f"    … and {len(items) - _SHOWN:,} more (--json lists all)")


def reconcile_command(
    code: Annotated[str, typer.Argument(help="The insurer's code.")],
    file: Annotated[
        Path, typer.Argument(help="NDJSON (.ndjson/.jsonl) or CSV (policy_no,version) export.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Compare an insurer's export with the registry; list what to resend (DESIGN §10)."""
    if not file.is_file():
        console.print(f"[red]no such file: {file}[/red]")
        raise typer.Exit(2)
    kind = kind_of(file)
    try:
        with open_container() as container:
            insurer = container.insurers.get(code).code
            with file.open("rb") as source:
                total = count_lines(source, kind)
                bar = Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    disable=as_json,
                )
                with bar:
                    task = bar.add_task(f"reading {file.name}", total=total)
                    lines = _counted(read_lines(source, kind), bar, task)
                    report = container.reconcile.operator_report(insurer, lines)
                    bar.update(task, completed=total, description="compared")
    except DomainError as error:
        fail(error, as_json)
        return
    if as_json:
        print(json.dumps(report_json(report), ensure_ascii=False))
    else:
        _summary(report)
    raise typer.Exit(0 if report.match else 1)


def compliance_command(
    code: Annotated[str, typer.Argument(help="The insurer's code.")],
    month: Annotated[str, typer.Option(help="YYYY-MM, Beijing time.")],
    csv: Annotated[
        bool, typer.Option("--csv", help="Print the monthly CSV report (a row per day).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """An insurer's late reports in a month (DESIGN §10), as JSON or the CSV report."""
    from ctplhub.api.presenters_reconcile import compliance, compliance_csv

    try:
        with open_container() as container:
            report = container.compliance.month(container.insurers.get(code).code, month)
    except DomainError as error:
        fail(error, as_json)
        return
    if csv:
        print(compliance_csv(report), end="")
    else:
        print(json.dumps(compliance(report), ensure_ascii=False))
