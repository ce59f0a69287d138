"""``ctplhub import``: a file of events, streamed through the same use case as the
batch endpoint, with a Rich progress bar and a per-line error report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from ctplhub.bootstrap import Container
from ctplhub.domain.errors import InsurerNotCertified, UnknownInsurer
from ctplhub.domain.policy import normalise_insurer_code
from ctplhub.services.event_lines import CSV, NDJSON, count_lines, read_lines

_SHOWN_ERRORS = 20


def kind_of(path: Path) -> str:
    return CSV if path.suffix.lower() == ".csv" else NDJSON


def import_file(
    container: Container,
    path: Path,
    insurer: str,
    *,
    errors_to: Path | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Import ``path`` for ``insurer``; returns the summary printed by ``--json``."""
    console = console or Console(stderr=True)
    code = normalise_insurer_code(insurer)
    record = next((r for r in container.insurers.list() if r["insurer_code"] == code), None)
    if record is None:
        raise UnknownInsurer(f"no insurer {code}; register it with `ctplhub insurer add`")
    if record["status"] != "certified":
        raise InsurerNotCertified(f"insurer {code} is {record['status']}")
    kind = kind_of(path)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    shown: list[dict[str, Any]] = []
    error_file: IO[str] | None = errors_to.open("w", encoding="utf-8") if errors_to else None
    try:
        with path.open("rb") as source:
            total = count_lines(source, kind)
            bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                "{task.fields[rejected]} rejected",
                TimeRemainingColumn(),
                console=console,
                disable=not progress,
            )
            with bar:
                task = bar.add_task(f"importing {path.name}", total=total, rejected=0)
                results = container.report_events.report_many(
                    read_lines(source, kind), insurer_code=code, fill_insurer=True
                )
                for done, result in enumerate(results, start=1):
                    counts[result.status] += 1
                    if result.status == "rejected":
                        line = result.as_dict()
                        if len(shown) < _SHOWN_ERRORS:
                            shown.append(line)
                        if error_file is not None:
                            error_file.write(json.dumps(line, ensure_ascii=False) + "\n")
                    if done % 1000 == 0 or done == total:  # redrawing per line would dominate
                        bar.update(task, completed=done, rejected=counts["rejected"])
    finally:
        if error_file is not None:
            error_file.close()
    if progress:
        _report(console, path, counts, shown, errors_to)
    return {"file": str(path), "insurer_code": code, **counts, "errors": shown}


def _report(
    console: Console,
    path: Path,
    counts: dict[str, int],
    shown: list[dict[str, Any]],
    errors_to: Path | None,
) -> None:
    console.print(
        f"{path.name}: [green]{counts['accepted']} accepted[/green], "
        f"{counts['duplicate']} duplicate, [red]{counts['rejected']} rejected[/red]"
    )
    if not shown:
        return
    table = Table("line", "code", "message", title="rejected lines")
    for line in shown:
        table.add_row(str(line["line"]), line["error"]["code"], line["error"]["message"])
    console.print(table)
    if counts["rejected"] > len(shown):
        hint = f" (all of them in {errors_to})" if errors_to else "; use --errors FILE for all"
        console.print(f"… and {counts['rejected'] - len(shown)} more{hint}")
