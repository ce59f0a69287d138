"""Benchmark of issue 8: what the ledger costs batch ingest.

The figure: with every accepted event appended to the Merkle log in its own transaction
(entry, salts sealed, leaf and stored hashes, a signed tree head per transaction), batch
ingest keeps at least 80 % of its rate without the ledger, in the same run, on the same
events, on each engine.

"Without" is, by default (``--baseline-rev same``), this very code with the ledger cut
out: a copy of ``src/`` in which ``ReportEvents._store`` neither builds the entries nor
appends them (the three statements are removed by text, and the bench stops if any is
not found exactly once), so the two variants differ by the ledger and nothing else. The
"without" rounds must leave no leaf behind, which the bench checks. ``--baseline-rev
REV`` instead runs the code at a git revision, e.g. cb705a2, the code just before the
ledger was wired (its pure core and tables exist, nothing writes them), exported from git
and run by the same Python with the same packages, as ``bench_ingest`` and
``bench_privacy`` do with their "code before"; that also counts whatever else changed
since. Rounds alternate without -> with, ``--repeats`` times, each a
fresh database (DROP/CREATE or a new SQLite file, ``ctplhub init``, the five insurers)
loaded with ``ctplhub import FILE --insurer CODE --json`` per insurer file; wall time
covers the whole processes. Medians and the ratio are reported, with the leaves and tree
heads the "with" rounds wrote, which prove the ledger was on.

With ``--path api`` the same events go instead through the insurers' batch endpoint
(``POST /v1/policy-events/batch``, DESIGN §3), the way an insurer's integration sends
them: a fresh database per round, ``ctplhub serve --workers 1`` (for "without", the same
ledgerless copy of ``src/``), then each insurer's file posted in signed NDJSON batches
of ``--batch-lines`` lines, one after the other, by ``ctplhub.client``. Wall time covers
the posting, from the first request to the last answer; the server's CPU is read from
``/proc``. Every line must come back accepted.

    .venv/bin/python bench/bench_ledger_ingest.py                     # 200,000 events
    .venv/bin/python bench/bench_ledger_ingest.py --path api --engines postgresql
    .venv/bin/python bench/bench_ledger_ingest.py --events 5000 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench_ingest import baseline_source, fleet_files
from common import (
    ENGINES,
    OUT,
    PYTHON,
    ROOT,
    FleetFiles,
    Home,
    add_wait_quiet,
    bench_main,
    count_rows,
    fresh_home,
    log,
    median,
    server,
)
from loading import import_fleet
from measure import _cpu_of, wait_quiet

from ctplhub.client import CtplHubClient

TARGET = 0.80
VARIANTS = ("without", "with")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200_000, help="events per import round")
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines measured"
    )
    parser.add_argument("--db", default="ctplhub_bench_ledger_ingest", help="database (recreated)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of each")
    parser.add_argument(
        "--baseline-rev",
        default="same",
        help="the code without the ledger: `same` (this code, the ledger cut out) or a git rev",
    )
    parser.add_argument(
        "--keep-files", action="store_true", help="keep the NDJSON files (and reuse them)"
    )
    parser.add_argument(
        "--path",
        choices=("import", "api"),
        default="import",
        help="`ctplhub import` per file, or the batch endpoint of `ctplhub serve`",
    )
    parser.add_argument("--batch-lines", type=int, default=5_000, help="api: lines per batch")
    add_wait_quiet(parser)


# The statements of ``ReportEvents._store`` that are the ledger's part of ingest: keeping
# each accepted event's canonical form, building the chunk's entries, appending them.
_LEDGER_STATEMENTS = (
    "                committed.append(canonical)\n",
    "            entries = self._ledger.entries.build_many(committed)  # before any lock\n",
    "            if rows:  # last: the append lock is held from here to the commit\n"
    "                appended = self._ledger.append(uow.ledger, entries, event_ids, now)\n",
)


def ledgerless_source() -> list[str]:
    """``[python, src folder]`` of a copy of this ``src/`` whose ingest skips the ledger."""
    folder = OUT / "baseline-ledgerless"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(Path(ROOT) / "src", folder / "src")
    module = folder / "src" / "ctplhub" / "services" / "report_events.py"
    text = module.read_text()
    for statement in _LEDGER_STATEMENTS:
        if text.count(statement) != 1:
            raise RuntimeError(f"report_events.py changed; cannot cut {statement!r}")
        text = text.replace(statement, "")
    module.write_text(text)
    return [PYTHON, str(folder / "src")]


def one_round(fleet: FleetFiles, db: str, engine: str, command: list[str] | None) -> dict[str, Any]:
    home = Home.for_db(db, engine)
    fresh_home(home)
    runs = import_fleet(home, fleet, command)
    wall = sum(r.wall_s for r in runs)
    cpu = sum(r.cpu_s for r in runs)
    return {
        "wall_s": round(wall, 2),
        "events_per_s": round(fleet.events / wall),
        "cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(fleet.events / cpu),
        "pg_active_s": round(sum(r.pg_active_s for r in runs), 2),
        "machine_busy_cores": round(median([r.machine_busy_cores for r in runs]), 2),
        "tree_rss_mb": round(max(r.tree_rss_mb for r in runs), 1),
        "accepted": sum(r.summary["accepted"] for r in runs),
        "rejected": sum(r.summary["rejected"] for r in runs),
        "events_in_db": count_rows(home, "policy_events"),
        "leaves_in_db": count_rows(home, "ledger_leaves"),
        "tree_heads_in_db": count_rows(home, "ledger_tree_heads"),
    }


def _batches(path: str, lines: int) -> list[bytes]:
    with open(path, "rb") as source:
        every = source.readlines()
    return [b"".join(every[i : i + lines]) for i in range(0, len(every), lines)]


def api_round(
    fleet: FleetFiles, db: str, engine: str, command: list[str] | None, batch_lines: int
) -> dict[str, Any]:
    """Every file through the batch endpoint of a fresh server (see the module doc)."""
    home = Home.for_db(db, engine)
    keys = fresh_home(home)
    bodies = {code: _batches(path, batch_lines) for code, path in fleet.files.items()}
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    name = "ledger-ingest-" + ("without" if command else "with")
    with server(home, name=name, code=command) as srv:
        cpu_before = _cpu_of(srv.pid)
        started = time.perf_counter()
        for code, batches in bodies.items():
            key_id, secret = keys[code]
            with CtplHubClient(srv.base, key_id, secret, timeout=600) as client:
                for body in batches:
                    answer = client.report_batch(body)
                    for status in counts:
                        counts[status] += answer[status]
        wall = time.perf_counter() - started
        cpu = _cpu_of(srv.pid) - cpu_before
    if counts["accepted"] != fleet.events:
        raise RuntimeError(f"not every line was accepted: {counts}")
    return {
        "wall_s": round(wall, 2),
        "events_per_s": round(fleet.events / wall),
        "server_cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(fleet.events / cpu),
        **counts,
        "events_in_db": count_rows(home, "policy_events"),
        "leaves_in_db": count_rows(home, "ledger_leaves"),
        "tree_heads_in_db": count_rows(home, "ledger_tree_heads"),
    }


def run_engine(args: argparse.Namespace, fleet: FleetFiles, engine: str) -> dict[str, Any]:
    if args.baseline_rev == "same":
        before = ledgerless_source()
    else:
        before = baseline_source(args.baseline_rev)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for attempt in range(1, args.repeats + 1):
        for name, command in (("without", before), ("with", None)):
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            if args.path == "api":
                result = api_round(fleet, args.db, engine, command, args.batch_lines)
            else:
                result = one_round(fleet, args.db, engine, command)
            rounds[name].append(result)
        w, o = rounds["without"][-1], rounds["with"][-1]
        if args.baseline_rev == "same" and w["leaves_in_db"]:
            raise RuntimeError("the round without the ledger wrote leaves")
        log(
            f"  {engine} run {attempt}: without {w['events_per_s']:,} events/s | with "
            f"{o['events_per_s']:,} events/s ({o['leaves_in_db']:,} leaves, "
            f"{o['tree_heads_in_db']:,} tree heads) -> {o['events_per_s'] / w['events_per_s']:.1%}"
        )
    without = median([r["events_per_s"] for r in rounds["without"]])
    with_ = median([r["events_per_s"] for r in rounds["with"]])
    ratio = with_ / without
    return {
        "engine": engine,
        "path": args.path,
        "baseline_rev": args.baseline_rev,
        "without": {"events_per_s_median": round(without), "runs": rounds["without"]},
        "with": {"events_per_s_median": round(with_), "runs": rounds["with"]},
        "ratio_with_over_without": round(ratio, 4),
        "ratio_per_run": [
            round(o["events_per_s"] / w["events_per_s"], 4)
            for w, o in zip(rounds["without"], rounds["with"], strict=True)
        ],
        "ledger_cost_share": round(1 - ratio, 4),
        "target_ratio_ge_0.80": ratio >= TARGET,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    fleet = fleet_files(args.events, args.keep_files)
    log(f"ledger ingest bench: {fleet.events:,} events in {len(fleet.files)} files")
    try:
        engines = {engine: run_engine(args, fleet, engine) for engine in args.engines}
    finally:
        if not args.keep_files:
            for path in fleet.files.values():
                os.unlink(path)
    return {
        "benchmark": "ledger_ingest",
        "events": fleet.events,
        "repeats": args.repeats,
        "engines": engines,
    }


def _without(rev: str) -> str:
    return "this code, the ledger cut out" if rev == "same" else f"code at {rev}"


def summary_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"batch ingest ({e.get('path', 'import')}) on {engine}: with the ledger "
        f"{e['with']['events_per_s_median']:,} "
        f"events/s, without ({_without(e['baseline_rev'])}) "
        f"{e['without']['events_per_s_median']:,} events/s -> {e['ratio_with_over_without']:.1%} "
        f"(the ledger costs {e['ledger_cost_share']:.1%}; target <= 20 %: "
        f"{'met' if e['target_ratio_ge_0.80'] else 'MISSED'}); per run {e['ratio_per_run']}"
        for engine, e in result["engines"].items()
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("ledger_ingest", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
