"""Benchmark 1: verified coverage queries per second, on each engine, against a plain
FastAPI app measured in the same run.

For each engine, a database of at least ``--policies`` policies is loaded with `ctplhub
import` and nothing else, then served by `ctplhub serve` (one process), as an operator
runs it. ``wrk -t2 -c32`` POSTs ``/v1/coverage/query`` bodies ``{"plate", "vin_last6"}``
cycling over ``--pairs`` real vehicles of the loaded fleet. The yardstick is the plain
app of ``plain_app.py`` (``@app.post`` returning a small dict) under the same uvicorn
settings: rounds alternate plain → ours, ``--repeats`` times, and medians are reported.
Beside it, ``GET /healthz`` of our own server shows what the framework and our
middleware cost on their own.

    .venv/bin/python bench/bench_query.py --reuse                 # the issue's scale
    .venv/bin/python bench/bench_query.py --policies 20000 --duration 3 --repeats 1
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

import httpx
from common import (
    OUT,
    Home,
    RunningServer,
    add_query_db_arguments,
    add_wait_quiet,
    bench_main,
    log,
    median,
    server,
    spread,
)
from loading import query_homes
from measure import CpuMeter, query_script, run_wrk, wait_quiet

TARGETS = {"postgresql": (0.50, 30.0), "sqlite": (0.40, 50.0)}  # ratio, p99 ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.add_argument("--pairs", type=int, default=5_000, help="distinct vehicles queried")
    parser.add_argument("--duration", type=float, default=20, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of unmeasured wrk load")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    add_wait_quiet(parser)


def precheck(base: str, pairs: list[tuple[str, str]], n: int = 300) -> dict[str, Any]:
    """Status codes of a sample of the pairs, one by one, before loading the server."""
    statuses: Counter[int] = Counter()
    covered: Counter[str] = Counter()
    with httpx.Client(base_url=base, timeout=30) as client:
        for plate, tail in spread(pairs, n):
            response = client.post("/v1/coverage/query", json={"plate": plate, "vin_last6": tail})
            statuses[response.status_code] += 1
            if response.status_code == 200:
                covered[response.json()["status"]] += 1
    return {"sampled": sum(statuses.values()), "statuses": dict(statuses), "status": dict(covered)}


def with_cpu(result: dict[str, Any], cpu: dict[str, float]) -> dict[str, Any]:
    """Add CPU cost per request: the server process (all its threads) and, on
    PostgreSQL, the backends of the database."""
    n = max(result["requests"], 1)
    result["server_cpu_ms_per_req"] = cpu["server_cpu_s"] / n * 1000
    result["pg_cpu_ms_per_req"] = cpu["pg_cpu_s"] / n * 1000
    result["server_busy"] = cpu["server_cpu_s"] / cpu["wall_s"]  # 1.0 = one core's worth
    result["machine_busy_cores"] = cpu["machine_busy_cores"]
    return result


def _measured(
    srv: RunningServer, db: str | None, url: str, args: argparse.Namespace, **wrk: Any
) -> dict[str, Any]:
    meter = CpuMeter(srv.pid, db)
    meter.start()
    result = run_wrk(
        url, duration=args.duration, connections=args.connections, threads=args.threads, **wrk
    )
    return with_cpu(result, meter.stop())


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps_median": round(median([r["rps"] for r in runs])),
        "p50_ms_median": median([r["p50_ms"] for r in runs]),
        "p99_ms_median": median([r["p99_ms"] for r in runs]),
        "non_2xx_share_median": median([r["non_2xx_share"] for r in runs]),
        "server_cpu_ms_per_req_median": median([r["server_cpu_ms_per_req"] for r in runs]),
        "pg_cpu_ms_per_req_median": median([r["pg_cpu_ms_per_req"] for r in runs]),
        "server_busy_median": median([r["server_busy"] for r in runs]),
        "machine_busy_cores_median": median([r["machine_busy_cores"] for r in runs]),
        "runs": runs,
    }


def run_engine(
    args: argparse.Namespace, plain: RunningServer, home: Home, state: dict[str, Any]
) -> dict[str, Any]:
    engine = home.engine
    pairs = spread([tuple(p) for p in state["pairs"]], args.pairs)
    script = query_script(pairs, OUT / f"query-{engine}.lua")
    db = home.db if engine == "postgresql" else None
    log(f"query bench on {engine}: {len(pairs):,} vehicles, wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration:g}s")  # fmt: skip
    plain_url = f"{plain.base}/v1/coverage/query"
    rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "query": [], "healthz": []}
    with server(home, name=f"query-{engine}") as srv:
        check = precheck(srv.base, pairs)
        log(f"  precheck of {check['sampled']} pairs: {check['statuses']} {check['status']}")
        query_url = f"{srv.base}/v1/coverage/query"
        wrk = {"connections": args.connections, "threads": args.threads}
        if args.warmup > 0:
            run_wrk(plain_url, duration=args.warmup, script=script, **wrk)
            run_wrk(query_url, duration=args.warmup, script=script, **wrk)
        for attempt in range(1, args.repeats + 1):
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            p = _measured(plain, None, plain_url, args, script=script)
            q = _measured(srv, db, query_url, args, script=script)
            h = _measured(srv, None, f"{srv.base}/healthz", args)
            for name, result in (("plain", p), ("query", q), ("healthz", h)):
                rounds[name].append(result)
            log(
                f"  run {attempt}: plain {p['rps']:,.0f} req/s | query {q['rps']:,.0f} req/s "
                f"(p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms, non-2xx "
                f"{q['non_2xx_share']:.2%}) | ratio {q['rps'] / p['rps']:.1%} | our /healthz "
                f"{h['rps']:,.0f} req/s"
            )
            log(
                f"         CPU per request: plain {p['server_cpu_ms_per_req']:.3f} ms | query "
                f"server {q['server_cpu_ms_per_req']:.3f} ms + PostgreSQL "
                f"{q['pg_cpu_ms_per_req']:.3f} ms; server {q['server_busy']:.0%} of a core, "
                f"machine {q['machine_busy_cores']:.2f} cores busy"
            )
    ratio_target, p99_target = TARGETS[engine]
    plain_rps = median([r["rps"] for r in rounds["plain"]])
    query_rps = median([r["rps"] for r in rounds["query"]])
    p99 = median([r["p99_ms"] for r in rounds["query"]])
    ratio = query_rps / plain_rps
    return {
        "engine": engine,
        "db": home.db,
        "policies_in_db": state.get("policies_in_db"),
        "loaded": {k: state.get(k) for k in ("load_wall_s", "load_events_per_s", "events")},
        "vehicles_queried": len(pairs),
        "precheck": check,
        "plain": _summary(rounds["plain"]),
        "query": _summary(rounds["query"]),
        "healthz": _summary(rounds["healthz"]),
        "ratio_median": round(ratio, 4),
        "ratio_per_run": [
            round(q["rps"] / p["rps"], 4)
            for p, q in zip(rounds["plain"], rounds["query"], strict=True)
        ],
        "targets": {
            f"ratio_ge_{ratio_target:.2f}": ratio >= ratio_target,
            f"p99_lt_{p99_target:g}ms": p99 < p99_target,
        },
    }


def run(
    args: argparse.Namespace, homes: dict[str, tuple[Home, dict[str, Any]]] | None = None
) -> dict:
    homes = homes or query_homes(args)
    with server(None, name="plain", ready_path="/docs") as plain:
        engines = {engine: run_engine(args, plain, *homes[engine]) for engine in args.engines}
    return {
        "benchmark": "query",
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency",
        "repeats": args.repeats,
        "engines": engines,
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, e in result["engines"].items():
        p, q, h = e["plain"], e["query"], e["healthz"]
        ratio_target, p99_target = TARGETS[engine]
        ratio_ok, p99_ok = e["targets"].values()
        lines += [
            f"verified query on {engine}: {q['rps_median']:,} req/s vs plain FastAPI "
            f"{p['rps_median']:,} req/s -> {e['ratio_median']:.1%} (target >= "
            f"{ratio_target:.0%}: {'met' if ratio_ok else 'MISSED'}); p99 "
            f"{q['p99_ms_median']:.1f} ms (target < {p99_target:g} ms: "
            f"{'met' if p99_ok else 'MISSED'}); non-2xx {q['non_2xx_share_median']:.2%}",
            f"  CPU per request: ours {q['server_cpu_ms_per_req_median']:.3f} ms + PostgreSQL "
            f"{q['pg_cpu_ms_per_req_median']:.3f} ms, plain {p['server_cpu_ms_per_req_median']:.3f}"
            f" ms; our /healthz {h['rps_median']:,} req/s "
            f"({h['rps_median'] / p['rps_median']:.0%} of plain)",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    return bench_main("query", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
