"""Benchmark of issue 8: ``ctplhub ledger audit`` over 1,000,000 entries, on each engine.

The figure: the whole audit (every leaf recomputed from its stored event, the salts
unsealed and the owner's fields decrypted; every stored hash and root recomputed; every
signed tree head checked) in under 60 s.

The database is loaded through the real ingest path only (``ctplhub import`` of the demo
fleet, ``loading.py``), into a database of its own (``--db``), and kept for later runs
with ``--reuse``. Each round runs ``ctplhub ledger audit --json`` as an operator would,
once with the default workers (one per core) and once with ``--workers 0`` (all in one
process), ``--repeats`` times alternating; wall time covers the whole process, CPU and
peak memory come from ``/usr/bin/time -v`` (workers included).

    .venv/bin/python bench/bench_ledger_audit.py --reuse                  # 1,000,000
    .venv/bin/python bench/bench_ledger_audit.py --events 3000 --repeats 1  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from common import (
    CTPLHUB,
    DATA,
    ENGINES,
    Home,
    add_wait_quiet,
    bench_main,
    count_rows,
    ctplhub,
    fresh_home,
    log,
    median,
    write_fleet_files,
)
from loading import import_fleet
from measure import time_v, wait_quiet

TARGET_S = 60.0
VARIANTS: dict[str, list[str]] = {"default_workers": [], "one_process": ["--workers", "0"]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000_000, help="ledger entries audited")
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines measured"
    )
    parser.add_argument("--db", default="ctplhub_bench_ledger_audit", help="database name")
    parser.add_argument("--repeats", type=int, default=3, help="audits of each variant")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database when it holds enough entries"
    )
    add_wait_quiet(parser)


def ensure_loaded(db: str, engine: str, events: int, reuse: bool) -> tuple[Home, dict[str, Any]]:
    home = Home.for_db(db, engine)
    held = count_rows(home, "ledger_leaves")
    if reuse and held is not None and held >= events:
        log(f"reusing {engine} {db}: {held:,} entries; migrating to head")
        ctplhub(home, "init")
        return home, {"loaded": "reused", "entries": held}
    log(f"loading {engine} {db} with {events:,} events through `ctplhub import` ...")
    fresh_home(home)
    fleet = write_fleet_files(DATA / f"ledger-audit-{engine}-{db}", events=events)
    started = time.perf_counter()
    runs = import_fleet(home, fleet)
    wall = time.perf_counter() - started
    for path in fleet.files.values():
        os.unlink(path)
    held = count_rows(home, "ledger_leaves") or 0
    log(f"  {engine} {db}: {held:,} entries loaded in {wall:.0f}s")
    return home, {
        "loaded": "now",
        "entries": held,
        "load_wall_s": round(wall, 1),
        "rejected": sum(r.summary["rejected"] for r in runs),
    }


def one_audit(home: Home, extra: list[str]) -> dict[str, Any]:
    timed = time_v([CTPLHUB, "ledger", "audit", "--json", *extra], home.env())
    if timed.returncode != 0 or not timed.stdout.strip():
        raise RuntimeError(
            f"ledger audit exited {timed.returncode}:\n{timed.stdout[-2000:]}\n"
            f"{timed.stderr[-2000:]}"
        )
    report = json.loads(timed.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(timed.wall_s, 2),
        "cpu_s": round(timed.cpu_s, 2),
        "tree_rss_mb": round(timed.tree_rss_mb, 1),
        "processes": timed.processes,
        "leaves": report["leaves"],
        "stored_hashes": report["stored_hashes"],
        "tree_heads": report["tree_heads"],
        "clean": report["clean"],
        "leaves_per_s": round(report["leaves"] / timed.wall_s),
    }


def run_engine(args: argparse.Namespace, engine: str) -> dict[str, Any]:
    home, load = ensure_loaded(args.db, engine, args.events, args.reuse)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for attempt in range(1, args.repeats + 1):
        for name, extra in VARIANTS.items():
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            rounds[name].append(one_audit(home, extra))
            r = rounds[name][-1]
            log(
                f"  {engine} run {attempt} {name}: {r['leaves']:,} leaves in {r['wall_s']:.1f}s "
                f"({r['leaves_per_s']:,}/s, CPU {r['cpu_s']:.1f}s, {r['processes']} processes, "
                f"{r['tree_rss_mb']:.0f} MB), clean={r['clean']}"
            )
    medians = {name: median([r["wall_s"] for r in runs]) for name, runs in rounds.items()}
    best = min(medians.values())
    return {
        "engine": engine,
        "db": args.db,
        "load": load,
        **{name: {"wall_s_median": medians[name], "runs": runs} for name, runs in rounds.items()},
        "target_lt_60s": best < TARGET_S,
        "all_clean": all(r["clean"] for runs in rounds.values() for r in runs),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": "ledger_audit",
        "events": args.events,
        "repeats": args.repeats,
        "engines": {engine: run_engine(args, engine) for engine in args.engines},
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"ledger audit on {engine} over {e['load']['entries']:,} entries: "
        f"{e['default_workers']['wall_s_median']:.1f}s with a worker per core, "
        f"{e['one_process']['wall_s_median']:.1f}s in one process (medians; target < 60 s: "
        f"{'met' if e['target_lt_60s'] else 'MISSED'}); every audit clean: {e['all_clean']}"
        for engine, e in result["engines"].items()
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("ledger_audit", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
