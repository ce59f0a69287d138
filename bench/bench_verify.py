"""Benchmark 3: bulk verification of 10,000 plates in one call, on each engine.

``POST /v1/coverage/verify`` with a police bearer token (``ctplhub user add ... --role
police``) against `ctplhub serve` on the same databases as the query benchmark. Baseline
in the same run: one call of 100 plates. Each size is called ``--calls`` times,
alternating, after one unmeasured warm-up call; medians and per-plate costs are
reported.

    .venv/bin/python bench/bench_verify.py --reuse
    .venv/bin/python bench/bench_verify.py --policies 20000 --calls 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

import httpx
from common import (
    Home,
    add_query_db_arguments,
    add_wait_quiet,
    bench_main,
    log,
    median,
    police_token,
    server,
    spread,
)
from loading import query_homes
from measure import CpuMeter, wait_quiet

TARGET_S = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.add_argument("--plates", type=int, default=10_000, help="plates in the bulk call")
    parser.add_argument("--baseline-plates", type=int, default=100, help="plates in the baseline")
    parser.add_argument("--calls", type=int, default=5, help="measured calls of each size")
    add_wait_quiet(parser)


def _call(client: httpx.Client, items: list[dict[str, str]]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.post("/v1/coverage/verify", json={"items": items})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    if len(body["results"]) != len(items):
        raise RuntimeError(f"asked {len(items)} items, got {len(body['results'])} results")
    return elapsed, body


def run(
    args: argparse.Namespace, homes: dict[str, tuple[Home, dict[str, Any]]] | None = None
) -> dict:
    homes = homes or query_homes(args)
    return {
        "benchmark": "verify",
        "calls": args.calls,
        "engines": {engine: run_engine(args, *homes[engine]) for engine in args.engines},
    }


def run_engine(args: argparse.Namespace, home: Home, state: dict[str, Any]) -> dict[str, Any]:
    plates = [plate for plate, _ in spread([tuple(p) for p in state["pairs"]], args.plates)]
    bulk = [{"plate": plate} for plate in plates]
    small = [{"plate": plate} for plate in spread(plates, args.baseline_plates)]
    token = police_token(home)
    log(f"verify bench on {home.engine}: {len(bulk):,} plates per call vs {len(small)}")
    bulk_s: list[float] = []
    small_s: list[float] = []
    costs: list[dict[str, float]] = []
    with (
        server(home, name=f"verify-{home.engine}") as srv,
        httpx.Client(
            base_url=srv.base, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        first_s, body = _call(client, bulk)
        statuses = Counter(r["status"] or f"error:{r['error']['code']}" for r in body["results"])
        covered = Counter(str(r["covered"]) for r in body["results"])
        log(f"  first (cold) call of {len(bulk):,}: {first_s:.3f}s; {dict(statuses)}")
        _call(client, small)
        meter = CpuMeter(srv.pid, home.db if home.engine == "postgresql" else None)
        for attempt in range(1, args.calls + 1):
            meter.start()
            bulk_s.append(_call(client, bulk)[0])
            costs.append(meter.stop())
            small_s.append(_call(client, small)[0])
            log(f"  call {attempt}: {len(bulk):,} plates {bulk_s[-1]:.3f}s (server CPU "
                f"{costs[-1]['server_cpu_s']:.3f}s, PostgreSQL CPU {costs[-1]['pg_cpu_s']:.3f}s) | "
                f"{len(small)} plates {small_s[-1] * 1000:.1f} ms")  # fmt: skip
    bulk_median = median(bulk_s)
    small_median = median(small_s)
    return {
        "engine": home.engine,
        "db": home.db,
        "policies_in_db": state.get("policies_in_db"),
        "bulk": {
            "plates": len(bulk),
            "median_s": round(bulk_median, 4),
            "per_plate_us": round(bulk_median / len(bulk) * 1e6, 1),
            "first_call_s": round(first_s, 4),
            "server_cpu_s_median": round(median([c["server_cpu_s"] for c in costs]), 4),
            "pg_cpu_s_median": round(median([c["pg_cpu_s"] for c in costs]), 4),
            "runs_s": [round(s, 4) for s in bulk_s],
            "statuses": dict(statuses),
            "covered": dict(covered),
        },
        "baseline": {
            "plates": len(small),
            "median_s": round(small_median, 4),
            "per_plate_us": round(small_median / len(small) * 1e6, 1),
            "runs_s": [round(s, 4) for s in small_s],
        },
        "targets": {"bulk_10k_lt_0_5s": bulk_median < TARGET_S},
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, e in result["engines"].items():
        b, s = e["bulk"], e["baseline"]
        met = "met" if e["targets"]["bulk_10k_lt_0_5s"] else "MISSED"
        lines += [
            f"bulk verify on {engine}: {b['plates']:,} plates in {b['median_s']:.3f} s median "
            f"({b['per_plate_us']:.0f} µs/plate; target < 0.5 s: {met})",
            f"  CPU per bulk call: server {b['server_cpu_s_median']:.3f} s, PostgreSQL "
            f"{b['pg_cpu_s_median']:.3f} s; baseline {s['plates']} plates in "
            f"{s['median_s'] * 1000:.1f} ms ({s['per_plate_us']:.0f} µs/plate); first cold "
            f"10k call {b['first_call_s']:.3f} s",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    return bench_main("verify", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
