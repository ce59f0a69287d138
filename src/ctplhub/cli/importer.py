"""``ctplhub import``: a file of events, streamed through the same use case as the
batch endpoint, with a Rich progress bar and a per-line error report.

Large files are imported by several worker processes. Each reads the whole file and
keeps the lines of its own share of policies (a stable hash of ``policy_no``), so all
versions of one policy are handled by one worker in file order — exactly the outcome of a
single sequential import — while parsing, validation and encryption use every core.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import queue
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from ctplhub.api.presenters import line_result
from ctplhub.bootstrap import Container, build_container
from ctplhub.config import Settings
from ctplhub.domain.errors import InsurerNotCertified
from ctplhub.services.event_lines import CSV, NDJSON, count_lines, read_lines
from ctplhub.services.report_events import LineStatus, RawLine

_SHOWN_ERRORS = 20


@dataclass
class ImportSummary:
    """What an import did; ``errors`` holds every rejected line, in line order."""

    file: str
    insurer_code: str
    workers: int
    accepted: int = 0
    duplicate: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    analysed: list[str] = field(default_factory=list)  # tables whose statistics it refreshed

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def count(self, status: str, n: int = 1) -> None:
        if status == LineStatus.ACCEPTED:
            self.accepted += n
        elif status == LineStatus.DUPLICATE:
            self.duplicate += n

    def as_json(self) -> dict[str, Any]:
        """What ``--json`` prints: the counts and the first rejected lines."""
        return {
            "file": self.file,
            "insurer_code": self.insurer_code,
            "workers": self.workers,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "errors": self.errors[:_SHOWN_ERRORS],
            "statistics_refreshed": self.analysed,
        }


_PARALLEL_FROM = 50_000  # below this, starting workers costs more than it saves
_REPORT_EVERY = 2_000


def kind_of(path: Path) -> str:
    return CSV if path.suffix.lower() == ".csv" else NDJSON


def shard_of(line: RawLine, shards: int) -> int:
    number, raw = line
    policy_no = raw.get("policy_no") if isinstance(raw, dict) else None
    if not isinstance(policy_no, str):
        return number % shards  # rejected anyway; any worker will do
    return zlib.crc32(policy_no.strip().encode()) % shards


def _my_lines(lines: Iterator[RawLine], shard: int, shards: int) -> Iterator[RawLine]:
    for line in lines:
        if shards == 1 or shard_of(line, shards) == shard:
            yield line


def quiet_collector() -> None:
    """For a process that imports: the long-lived objects built so far (the container, the
    modules) leave the cyclic collector's passes, and the passes come less often. A chunk
    makes ~100,000 short-lived objects that reference counting frees anyway; at the default
    threshold the collector walked them, and everything alive, every 700 allocations. 7 %
    less CPU per import (docs/PERFORMANCE.md). Process-wide: called by the import command
    and its workers, never by code that runs inside another program (a test, the server,
    which tunes its own in ``bootstrap``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _run_shard(
    settings: Settings,
    path: str,
    kind: str,
    code: str,
    shard: int,
    shards: int,
    out: Any,
) -> None:
    """One worker: import its share and report progress and rejected lines to ``out``."""
    container = build_container(settings)
    quiet_collector()
    counts = dict.fromkeys((s.value for s in LineStatus), 0)
    rejected: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as source:
            lines = _my_lines(read_lines(source, kind), shard, shards)
            done = 0
            for result in container.report_events.report_many(
                lines, insurer_code=code, fill_insurer=True
            ):
                counts[result.status.value] += 1
                done += 1
                if result.status is LineStatus.REJECTED:
                    rejected.append(line_result(result))
                if done % _REPORT_EVERY == 0:
                    out.put(("progress", done, rejected))
                    done, rejected = 0, []
        out.put(("progress", done, rejected))
        out.put(("done", counts, None))
    except BaseException as error:  # report, never hang the parent
        out.put(("failed", repr(error), None))
        raise
    finally:
        container.close()


def import_file(
    container: Container,
    path: Path,
    insurer: str,
    *,
    errors_to: Path | None = None,
    progress: bool = True,
    console: Console | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import ``path`` for ``insurer``, then refresh the planner statistics the load made
    stale, so the database answers well at once (no manual ``ANALYZE``)."""
    console = console or Console(stderr=True)
    record = container.insurers.get(insurer)
    code = record.code
    if record.status != "certified":
        raise InsurerNotCertified(f"insurer {code} is {record.status}")
    kind = kind_of(path)
    with path.open("rb") as source:
        total = count_lines(source, kind)
    if workers is None:
        workers = min(2, multiprocessing.cpu_count()) if total >= _PARALLEL_FROM else 1
    summary = ImportSummary(str(path), code, workers)
    rejected = summary.errors
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
        if workers == 1:
            with path.open("rb") as source:
                results = container.report_events.report_many(
                    read_lines(source, kind), insurer_code=code, fill_insurer=True
                )
                for done, result in enumerate(results, start=1):
                    summary.count(result.status)
                    if result.status is LineStatus.REJECTED:
                        rejected.append(line_result(result))
                    if done % 1000 == 0 or done == total:  # redrawing per line would dominate
                        bar.update(task, completed=done, rejected=len(rejected))
        else:
            _parallel(container.settings, path, kind, code, workers, summary, bar, task)
    rejected.sort(key=lambda line: line["line"])
    summary.analysed = container.report_events.refresh_statistics(summary.accepted)
    if errors_to is not None:
        _write_errors(errors_to, rejected)
    if progress:
        _report(console, summary, errors_to)
    return summary


def _parallel(
    settings: Settings,
    path: Path,
    kind: str,
    code: str,
    workers: int,
    summary: ImportSummary,
    bar: Progress,
    task: Any,
) -> None:
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    out = context.Queue()
    processes = [
        context.Process(
            target=_run_shard, args=(settings, str(path), kind, code, shard, workers, out)
        )
        for shard in range(workers)
    ]
    for process in processes:
        process.start()
    finished, failures = 0, []
    done = 0
    while finished < workers:
        try:
            kind_of_message, value, lines = out.get(timeout=1.0)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes) and out.empty():
                failures.append("a worker process died")
                break
            continue
        if kind_of_message == "progress":
            done += value
            summary.errors.extend(lines)
            bar.update(task, completed=done, rejected=summary.rejected)
        elif kind_of_message == "done":
            finished += 1
            for status in (LineStatus.ACCEPTED, LineStatus.DUPLICATE):
                summary.count(status, value[status.value])
        else:
            failures.append(value)
            finished += 1
    for process in processes:
        process.join()
    if failures:
        raise RuntimeError(f"import failed in a worker: {'; '.join(failures)}")


def _write_errors(path: Path, rejected: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for line in rejected:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def _report(console: Console, summary: ImportSummary, errors_to: Path | None) -> None:
    console.print(
        f"{Path(summary.file).name}: [green]{summary.accepted} accepted[/green], "
        f"{summary.duplicate} duplicate, [red]{summary.rejected} rejected[/red]"
    )
    if summary.analysed:
        console.print(f"planner statistics refreshed: {', '.join(summary.analysed)}")
    shown = summary.errors[:_SHOWN_ERRORS]
    if not shown:
        return
    table = Table("line", "code", "message", title="rejected lines")
    for line in shown:
        table.add_row(str(line["line"]), line["error"]["code"], line["error"]["message"])
    console.print(table)
    if summary.rejected > len(shown):
        hint = f" (all of them in {errors_to})" if errors_to else "; use --errors FILE for all"
        console.print(f"… and {summary.rejected - len(shown)} more{hint}")
