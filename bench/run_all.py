"""Run the benchmarks of docs/PERFORMANCE.md and write ``bench/out/results.json``.

Order: batch ingest into a fresh PostgreSQL database, against the code at
``--baseline-rev`` in the same run; then the query and bulk-verify benchmarks against a
database of at least ``--policies`` policies on each engine (loaded through ``ctplhub
import`` and nothing else, kept with ``--reuse`` when it already holds enough).

    .venv/bin/python bench/run_all.py --reuse                     # the issue's scale
    .venv/bin/python bench/run_all.py --smoke                     # about a minute
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import bench_ingest
import bench_query
import bench_verify
from common import OUT, log, machine
from loading import query_homes

SMOKE = {"events": 20_000, "policies": 20_000, "duration": 3, "warmup": 1, "repeats": 1,
         "calls": 2, "pairs": 2_000, "plates": 10_000}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny scale, to check the scripts")
    parser.add_argument("--events", type=int, default=1_000_000, help="ingest: events")
    parser.add_argument("--ingest-repeats", type=int, default=1, help="ingest: runs")
    parser.add_argument("--keep-files", action="store_true", help="ingest: keep NDJSON files")
    parser.add_argument("--baseline-rev", default="dd0ca87", help="ingest: code compared with")
    parser.add_argument("--engines", nargs="+", default=["postgresql", "sqlite"],
                        choices=["postgresql", "sqlite"], help="query/verify: engines")  # fmt: skip
    parser.add_argument("--policies", type=int, default=1_000_000, help="query DB: policies")
    parser.add_argument("--db", default="ctplhub_bench", help="query DB name")
    parser.add_argument("--reuse", action="store_true", help="query DB: keep when big enough")
    parser.add_argument("--pairs", type=int, default=5_000, help="query: vehicles cycled")
    parser.add_argument("--duration", type=float, default=20, help="query: seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=5, help="query: warm-up seconds")
    parser.add_argument("--repeats", type=int, default=3, help="query: alternating runs")
    parser.add_argument("--calls", type=int, default=5, help="verify: calls of each size")
    parser.add_argument("--plates", type=int, default=10_000, help="verify: plates per call")
    parser.add_argument("--wait-quiet", type=float, default=0,
                        help="wait up to S seconds for an idle machine")  # fmt: skip
    parser.add_argument("--skip", action="append", default=[],
                        choices=["ingest", "query", "verify"], help="leave one out")  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
        args.db = "ctplhub_bench_smoke"
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "argv": sys.argv[1:] if argv is None else argv,
    }
    summary: list[str] = []
    if "ingest" not in args.skip:
        ingest = bench_ingest.run(
            argparse.Namespace(
                events=args.events,
                db=f"{args.db}_ingest",
                repeats=args.ingest_repeats,
                keep_files=args.keep_files,
                baseline_rev=args.baseline_rev,
                wait_quiet=args.wait_quiet,
            )
        )
        results["ingest"] = ingest
        summary += bench_ingest.summary_lines(ingest)
    if {"query", "verify"} - set(args.skip):
        homes = query_homes(args)
        results["query_dbs"] = {
            engine: {k: v for k, v in state.items() if k != "pairs"}
            for engine, (_, state) in homes.items()
        }
        if "query" not in args.skip:
            query = bench_query.run(
                argparse.Namespace(
                    pairs=args.pairs,
                    duration=args.duration,
                    warmup=args.warmup,
                    connections=32,
                    threads=2,
                    repeats=args.repeats,
                    db=args.db,
                    engines=args.engines,
                    wait_quiet=args.wait_quiet,
                ),
                homes,
            )
            results["query"] = query
            summary += bench_query.summary_lines(query)
        if "verify" not in args.skip:
            verify = bench_verify.run(
                argparse.Namespace(
                    plates=args.plates,
                    baseline_plates=100,
                    calls=args.calls,
                    db=args.db,
                    engines=args.engines,
                    wait_quiet=args.wait_quiet,
                ),
                homes,
            )
            results["verify"] = verify
            summary += bench_verify.summary_lines(verify)
    results["elapsed_s"] = round(time.perf_counter() - started)
    results["summary"] = summary
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("results-smoke.json" if args.smoke else "results.json")
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps(results, ensure_ascii=False, indent=2))
    print()
    print("\n".join(summary))
    log(f"written {path} in {results['elapsed_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
