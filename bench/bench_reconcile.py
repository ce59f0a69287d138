"""Benchmark: reconciling an insurer that holds 1,000,000 policies (issue 10: digest and
a diff with 1,000 differences, under 30 s), on each engine.

One insurer (``RECON``) gets the whole demo fleet's book, loaded through `ctplhub import`
into its own database (``ctplhub_bench_reconcile``; the query benchmark's database spreads
its million policies over five insurers). Against `ctplhub serve`, the insurer's engineer
runs ``CtplHubClient.reconcile`` twice: with an export equal to the platform's book (the
digests match: one call), and with an export that differs in 1,000 policies (400 the
platform holds that the export lacks, 300 at another version, 300 the platform lacks:
the digest call, then the diff). Each is timed end to end (local digest, upload, answer)
``--calls`` times; medians are reported and the diff is checked against the differences
made.

    .venv/bin/python bench/bench_reconcile.py --reuse
    .venv/bin/python bench/bench_reconcile.py --policies 10000 --engines sqlite --calls 1
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from common import (
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
    server,
)
from loading import import_file
from measure import wait_quiet

from ctplhub.client import CtplHubClient
from ctplhub.services.demo_fleet import MAX_VEHICLES, iter_fleet_events

INSURER = "RECON"
TARGET_S = 30.0
DIFFERENCES = {"unknown_to_you": 400, "version_differs": 300, "missing_here": 300}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines measured"
    )
    parser.add_argument("--db", default="ctplhub_bench_reconcile", help="database name")
    parser.add_argument("--policies", type=int, default=1_000_000, help="policies of the insurer")
    parser.add_argument("--reuse", action="store_true", help="keep a database that has them")
    parser.add_argument("--calls", type=int, default=3, help="measured calls of each kind")
    add_wait_quiet(parser)


def _write_book_file(path: Path, policies: int) -> tuple[int, int]:
    """The demo fleet's events, every one under ``INSURER``, until ``policies`` policies
    (numbers of the five demo insurers never collide: their formats differ)."""
    seen: set[str] = set()
    events = 0
    now = datetime.now(UTC)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb", buffering=1 << 20) as out:
        vin = None
        for event in iter_fleet_events(MAX_VEHICLES, now=now):
            if event["vin"] != vin:
                if len(seen) >= policies:
                    break
                vin = event["vin"]
            event["insurer_code"] = INSURER
            out.write(orjson.dumps(event) + b"\n")
            seen.add(event["policy_no"])
            events += 1
    return events, len(seen)


def ensure_db(args: argparse.Namespace, engine: str) -> tuple[Home, dict[str, Any]]:
    home = Home.for_db(args.db, engine)
    state = home.read_state()
    held = count_rows(home, "policies")
    if args.reuse and state and held is not None and held >= args.policies:
        log(f"reusing {engine} {args.db}: {held:,} policies; migrating to head")
        ctplhub(home, "init")
        return home, state
    log(f"loading {engine} {args.db} with {args.policies:,} policies of {INSURER} ...")
    fresh_home(home)
    added = json.loads(
        ctplhub(home, "insurer", "add", INSURER, "--name", "对账基准", "--json").stdout
    )
    path = DATA / f"{engine}-{args.db}" / f"{INSURER}.ndjson"
    events, policies = _write_book_file(path, args.policies)
    run = import_file(home, INSURER, str(path), events)
    path.unlink()
    state = {
        "key_id": added["key_id"],
        "secret": added["secret"],
        "events": events,
        "policies": policies,
        "load_wall_s": round(run.wall_s, 1),
        "rejected": run.summary.get("rejected"),
    }
    home.write_state(state)
    log(f"  loaded {events:,} events ({policies:,} policies) in {run.wall_s:.0f}s")
    return home, state


def platform_book(home: Home) -> list[tuple[str, int]]:
    query = "SELECT policy_no, version FROM policies WHERE insurer_code = %s"
    if home.engine == "sqlite":
        with closing(sqlite3.connect(home.sqlite_file)) as conn:
            return list(conn.execute(query.replace("%s", "?"), (INSURER,)))
    with psycopg.connect(home.url) as conn:
        return list(conn.execute(query, (INSURER,)))


def differing_export(book: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The book with 1,000 differences, shuffled as an export would come."""
    rng = random.Random(10)
    picked = rng.sample(
        range(len(book)), DIFFERENCES["unknown_to_you"] + DIFFERENCES["version_differs"]
    )
    dropped = set(picked[: DIFFERENCES["unknown_to_you"]])
    bumped = set(picked[DIFFERENCES["unknown_to_you"] :])
    export = [(p, v + 1 if i in bumped else v) for i, (p, v) in enumerate(book) if i not in dropped]
    export += [(f"ZZ-NOT-HELD-{n:06d}", 1) for n in range(DIFFERENCES["missing_here"])]
    rng.shuffle(export)
    return export, dict(DIFFERENCES)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": "reconcile",
        "calls": args.calls,
        "engines": {engine: run_engine(args, *ensure_db(args, engine)) for engine in args.engines},
    }


def run_engine(args: argparse.Namespace, home: Home, state: dict[str, Any]) -> dict[str, Any]:
    book = platform_book(home)
    same = list(book)
    random.Random(3).shuffle(same)
    export, made = differing_export(book)
    match_s: list[float] = []
    diff_s: list[float] = []
    found: dict[str, int] = {}
    with (
        server(home, name=f"reconcile-{home.engine}") as srv,
        CtplHubClient(srv.base, state["key_id"], state["secret"], timeout=600) as hub,
    ):
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        for attempt in range(1, args.calls + 1):
            started = time.perf_counter()
            matched = hub.reconcile(INSURER, same)
            match_s.append(time.perf_counter() - started)
            if not matched.match:
                raise RuntimeError("an export equal to the platform's book did not match")
            started = time.perf_counter()
            result = hub.reconcile(INSURER, export)
            diff_s.append(time.perf_counter() - started)
            found = {
                "unknown_to_you": len(result.unknown_to_you),
                "version_differs": len(result.version_differs),
                "missing_here": len(result.missing_here),
            }
            if found != made:
                raise RuntimeError(f"diff found {found}, the export was made with {made}")
            log(f"  {home.engine} call {attempt}: match {match_s[-1]:.2f}s, "
                f"digest + diff {diff_s[-1]:.2f}s")  # fmt: skip
    return {
        "engine": home.engine,
        "db": home.db,
        "policies": len(book),
        "differences": found,
        "digest_only_s_median": round(median(match_s), 3),
        "digest_and_diff_s_median": round(median(diff_s), 3),
        "runs_s": {"match": [round(s, 3) for s in match_s], "diff": [round(s, 3) for s in diff_s]},
        "targets": {"reconcile_lt_30s": median(diff_s) < TARGET_S},
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, e in result["engines"].items():
        met = "met" if e["targets"]["reconcile_lt_30s"] else "MISSED"
        lines.append(
            f"reconcile on {engine}: {e['policies']:,} policies; digest only "
            f"{e['digest_only_s_median']:.2f} s, digest + diff of "
            f"{sum(e['differences'].values()):,} differences {e['digest_and_diff_s_median']:.2f} s "
            f"median (target < 30 s: {met})"
        )
    return lines


if __name__ == "__main__":
    sys.exit(bench_main("bench_reconcile", __doc__ or "", add_arguments, run, summary_lines))
