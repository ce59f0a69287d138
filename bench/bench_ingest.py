"""Benchmark 2: batch ingest of ``--events`` events through ``ctplhub import``, this
code against an earlier version of it, in the same run.

The demo fleet is written as one NDJSON file per insurer (the generator interleaves
insurers, and an import is for one insurer), then every file is imported, one after
the other, into a freshly created PostgreSQL database (DROP/CREATE, ``ctplhub init``,
``ctplhub insurer add``) with ``ctplhub import FILE --insurer CODE --json``: the whole
accepted path (parse, validate, encrypt, store, heads, planner statistics). Wall time
covers the whole processes; peak RSS comes from ``/usr/bin/time -v``.

Baselines in the same run, alternating with this code's imports: the same import by the
code at ``--baseline-rev`` (its ``src/`` exported from git under ``bench/out/``, run by
the same Python with the same packages), and a Python process per file that only reads
and ``orjson.loads`` every line.

    .venv/bin/python bench/bench_ingest.py                        # 1,000,000 events
    .venv/bin/python bench/bench_ingest.py --events 20000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import (
    DATA,
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
    write_fleet_files,
)
from loading import import_fleet
from measure import time_v, wait_quiet

TARGET_EVENTS_PER_S = 15_000
TARGET_RSS_MB = 300

PARSE_ONLY = """
import sys, orjson
n = 0
with open(sys.argv[1], "rb") as f:
    for raw in f:
        if raw.strip():
            orjson.loads(raw)
            n += 1
print(n)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000_000, help="events to import")
    parser.add_argument("--db", default="ctplhub_bench_ingest", help="database (recreated)")
    parser.add_argument("--repeats", type=int, default=1, help="fresh-database import runs")
    parser.add_argument(
        "--keep-files", action="store_true", help="keep the NDJSON files (and reuse them)"
    )
    parser.add_argument(
        "--baseline-rev",
        default="dd0ca87",
        help="git revision of the code to compare with ('none' to skip); default: main "
        "before the answer-path rework",
    )
    add_wait_quiet(parser)


def baseline_source(rev: str) -> list[str]:
    """``[python, src folder]`` of the code at ``rev``, exported from git."""
    folder = OUT / f"baseline-{rev}"
    if not (folder / "src" / "ctplhub").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    src = str(folder / "src")
    found = subprocess.run(
        [PYTHON, "-c", "import ctplhub; print(ctplhub.__file__)"],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).is_relative_to(src):
        raise RuntimeError(f"the baseline would import {found}, not the code at {rev}")
    return [PYTHON, src]


def fleet_files(events: int, keep: bool) -> FleetFiles:
    directory = DATA / f"ingest-{events}"
    manifest = directory / "manifest.json"
    if keep and manifest.exists():
        fleet = FleetFiles.from_dict(json.loads(manifest.read_text()))
        if fleet.exist() and fleet.events == events:
            log(f"reusing {fleet.events:,} events in {directory}")
            return fleet
    log(f"writing {events:,} events as per-insurer NDJSON files in {directory} ...")
    fleet = write_fleet_files(directory, events=events)
    fleet.pairs = []
    manifest.write_text(json.dumps(fleet.as_dict()))
    return fleet


def parse_only(fleet: FleetFiles) -> dict[str, Any]:
    wall = cpu = rss = 0.0
    for path in fleet.files.values():
        t = time_v([PYTHON, "-c", PARSE_ONLY, path], dict(os.environ))
        if t.returncode != 0:
            raise RuntimeError(f"parse-only baseline failed: {t.stderr}")
        wall += t.wall_s
        cpu += t.cpu_s
        rss = max(rss, t.max_rss_mb)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "events_per_s": round(fleet.events / wall),
        "max_rss_mb": round(rss, 1),
    }


def one_import(fleet: FleetFiles, db: str, command: list[str] | None = None) -> dict[str, Any]:
    home = Home.for_db(db)
    fresh_home(home)
    runs = import_fleet(home, fleet, command)
    wall = sum(r.wall_s for r in runs)
    cpu = sum(r.cpu_s for r in runs)
    pg_active = sum(r.pg_active_s for r in runs)
    accepted = sum(r.summary["accepted"] for r in runs)
    rejected = sum(r.summary["rejected"] for r in runs)
    duplicate = sum(r.summary["duplicate"] for r in runs)
    return {
        "wall_s": round(wall, 2),
        "events_per_s": round(fleet.events / wall),
        "cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(fleet.events / cpu),
        "pg_active_s": round(pg_active, 2),
        "machine_busy_cores": round(median([r.machine_busy_cores for r in runs]), 2),
        "max_rss_mb": round(max(r.max_rss_mb for r in runs), 1),
        "tree_rss_mb": round(max(r.tree_rss_mb for r in runs), 1),
        "tree_pss_mb": round(max(r.tree_pss_mb for r in runs), 1),
        "processes": max(r.processes for r in runs),
        "workers": sorted({r.summary.get("workers", 1) for r in runs}),
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
        "events_in_db": count_rows(home, "policy_events"),
        "policies_in_db": count_rows(home, "policies"),
        "per_file": [
            {
                "insurer": r.insurer,
                "lines": r.lines,
                "wall_s": round(r.wall_s, 2),
                "cpu_s": round(r.cpu_s, 2),
                "pg_active_s": round(r.pg_active_s, 2),
                "machine_busy_cores": round(r.machine_busy_cores, 2),
                "events_per_s": round(r.lines / r.wall_s),
                "max_rss_mb": round(r.max_rss_mb, 1),
                "tree_rss_mb": round(r.tree_rss_mb, 1),
                "tree_pss_mb": round(r.tree_pss_mb, 1),
                "processes": r.processes,
                "workers": r.summary.get("workers", 1),
            }
            for r in runs
        ],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    fleet = fleet_files(args.events, args.keep_files)
    log(f"ingest bench: {fleet.events:,} events in {len(fleet.files)} files {fleet.lines}")
    earlier = None if args.baseline_rev == "none" else baseline_source(args.baseline_rev)
    baselines: list[dict[str, Any]] = []
    imports: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    for attempt in range(1, args.repeats + 1):
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        baselines.append(parse_only(fleet))
        log(f"  run {attempt}: parse-only {baselines[-1]['events_per_s']:,} events/s")
        if earlier is not None:
            before.append(one_import(fleet, args.db, earlier))
            b = before[-1]
            log(f"  run {attempt}: import by {args.baseline_rev} {b['events_per_s']:,} events/s")
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
        imports.append(one_import(fleet, args.db))
        i = imports[-1]
        log(
            f"  run {attempt}: import {i['events_per_s']:,} events/s "
            f"({i['wall_s']:.1f}s; {i['events_per_cpu_s']:,} per importer CPU second), "
            f"peak RSS {i['tree_rss_mb']:.0f} MB in {i['processes']} processes "
            f"(largest {i['max_rss_mb']:.0f} MB), "
            f"accepted {i['accepted']:,}, rejected {i['rejected']:,}"
        )
    if not args.keep_files:
        for path in fleet.files.values():
            os.unlink(path)
    rate = median([i["events_per_s"] for i in imports])
    rss = max(i["max_rss_mb"] for i in imports)
    tree_rss = max(i["tree_rss_mb"] for i in imports)
    base_rate = median([b["events_per_s"] for b in baselines])
    return {
        "benchmark": "ingest",
        "db": args.db,
        "events": fleet.events,
        "files": fleet.lines,
        "repeats": args.repeats,
        "import": {
            "events_per_s_median": round(rate),
            "wall_s_median": median([i["wall_s"] for i in imports]),
            "events_per_cpu_s_median": round(median([i["events_per_cpu_s"] for i in imports])),
            "max_rss_mb": rss,
            "tree_rss_mb": tree_rss,
            "tree_pss_mb": max(i["tree_pss_mb"] for i in imports),
            "processes": max(i["processes"] for i in imports),
            "runs": imports,
        },
        "baseline_parse_only": {
            "events_per_s_median": round(base_rate),
            "wall_s_median": median([b["wall_s"] for b in baselines]),
            "max_rss_mb": max(b["max_rss_mb"] for b in baselines),
            "runs": baselines,
        },
        "import_share_of_parse_only": round(rate / base_rate, 4),
        "baseline_rev": args.baseline_rev,
        "baseline_import": {
            "events_per_s_median": round(median([b["events_per_s"] for b in before])),
            "tree_rss_mb": max(b["tree_rss_mb"] for b in before),
            "runs": before,
        }
        if before
        else None,
        "ratio_to_baseline": round(rate / median([b["events_per_s"] for b in before]), 4)
        if before
        else None,
        "targets": {
            "ge_15000_events_per_s": rate >= TARGET_EVENTS_PER_S,
            # Summed over the importer and its worker processes: the memory the command
            # needs. The largest single process alone is reported as max_rss_mb.
            "rss_lt_300mb": tree_rss < TARGET_RSS_MB,
            # The issue: no slower than the code before it (medians, same run).
            "not_slower_than_baseline": bool(before)
            and rate >= median([b["events_per_s"] for b in before]),
        },
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    i, b, ok = result["import"], result["baseline_parse_only"], result["targets"]
    return [
        f"ingest: {result['events']:,} events at {i['events_per_s_median']:,} events/s "
        f"(target >= 15,000: {'met' if ok['ge_15000_events_per_s'] else 'MISSED'}), "
        f"peak RSS {i['tree_rss_mb']:.0f} MB summed over {i['processes']} processes, "
        f"PSS {i['tree_pss_mb']:.0f} MB, largest process {i['max_rss_mb']:.0f} MB "
        f"(target < 300 MB: {'met' if ok['rss_lt_300mb'] else 'MISSED'})",
        f"  baseline read + orjson.loads only: {b['events_per_s_median']:,} events/s "
        f"(import runs at {result['import_share_of_parse_only']:.1%} of it); "
        f"importer CPU alone: {i['events_per_cpu_s_median']:,} events per CPU second",
        *(
            [
                f"  the code at {result['baseline_rev']}, same run: "
                f"{result['baseline_import']['events_per_s_median']:,} events/s -> this code "
                f"at {result['ratio_to_baseline']:.1%} of it (not slower: "
                f"{'met' if ok['not_slower_than_baseline'] else 'MISSED'})"
            ]
            if result["baseline_import"]
            else []
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("ingest", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
