"""Benchmark 1: verified coverage queries per second on one server process.

One uvicorn worker serves the real app (``create_app_from_env``) over a PostgreSQL
database of at least ``--policies`` policies, loaded through ``ctplhub import``. ``wrk``
POSTs ``/v1/coverage/query`` bodies ``{"plate", "vin_last6"}`` cycling over ``--pairs``
real vehicles of the loaded fleet. Baseline, in the same process and the same run:
``GET /bench/constant`` (constant JSON, same framework, server and response class).
Both are measured ``--repeats`` times, alternating; medians are reported.

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
    add_query_db_arguments,
    add_wait_quiet,
    bench_main,
    log,
    median,
    server,
    spread,
)
from loading import ensure_query_db
from measure import CpuMeter, query_script, run_wrk, wait_quiet

TARGET_RATIO = 0.40
TARGET_P99_MS = 50.0


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
    """Add CPU cost per request: server process and PostgreSQL backends of this DB."""
    n = max(result["requests"], 1)
    result["server_cpu_ms_per_req"] = cpu["server_cpu_s"] / n * 1000
    result["pg_cpu_ms_per_req"] = cpu["pg_cpu_s"] / n * 1000
    result["server_busy"] = cpu["server_cpu_s"] / cpu["wall_s"]  # 1.0 = one core saturated
    result["pg_sessions_opened"] = cpu["pg_sessions"]
    result["machine_busy_cores"] = cpu["machine_busy_cores"]
    return result


def run(args: argparse.Namespace, home_state: tuple[Home, dict[str, Any]] | None = None) -> dict:
    home, state = home_state or ensure_query_db(args.db, args.policies, reuse=args.reuse)
    pairs = spread([tuple(p) for p in state["pairs"]], args.pairs)
    script = query_script(pairs, OUT / "query.lua")
    log(f"query bench: {len(pairs):,} vehicles, wrk -t{args.threads} -c{args.connections}")
    constant: list[dict[str, Any]] = []
    query: list[dict[str, Any]] = []
    with server(home, name="query-server") as srv:
        check = precheck(srv.base, pairs)
        log(f"  precheck of {check['sampled']} pairs: {check['statuses']} {check['status']}")
        constant_url = f"{srv.base}/bench/constant"
        query_url = f"{srv.base}/v1/coverage/query"
        wrk = {"connections": args.connections, "threads": args.threads}
        if args.warmup > 0:
            run_wrk(constant_url, duration=args.warmup, **wrk)
            run_wrk(query_url, duration=args.warmup, script=script, **wrk)
        meter = CpuMeter(srv.pid, args.db)
        for attempt in range(1, args.repeats + 1):
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            meter.start()
            c = with_cpu(run_wrk(constant_url, duration=args.duration, **wrk), meter.stop())
            meter.start()
            q = with_cpu(
                run_wrk(query_url, duration=args.duration, script=script, **wrk), meter.stop()
            )
            constant.append(c)
            query.append(q)
            log(
                f"  run {attempt}: constant {c['rps']:,.0f} req/s (p99 {c['p99_ms']:.1f} ms) | "
                f"query {q['rps']:,.0f} req/s (p50 {q['p50_ms']:.1f} ms, "
                f"p99 {q['p99_ms']:.1f} ms, non-2xx {q['non_2xx_share']:.2%}) | "
                f"ratio {q['rps'] / c['rps']:.1%}"
            )
            log(
                f"         CPU per request: constant server {c['server_cpu_ms_per_req']:.3f} ms"
                f" | query server {q['server_cpu_ms_per_req']:.3f} ms + PostgreSQL "
                f"{q['pg_cpu_ms_per_req']:.3f} ms ({q['pg_sessions_opened']} sessions opened); "
                f"server busy {q['server_busy']:.0%} of a core, machine "
                f"{q['machine_busy_cores']:.2f} cores busy"
            )
    const_rps = median([c["rps"] for c in constant])
    query_rps = median([q["rps"] for q in query])
    p99 = median([q["p99_ms"] for q in query])
    ratio = query_rps / const_rps
    return {
        "benchmark": "query",
        "db": args.db,
        "policies_in_db": state.get("policies_in_db"),
        "vehicles_queried": len(pairs),
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency",
        "repeats": args.repeats,
        "precheck": check,
        "constant": {
            "rps_median": round(const_rps),
            "p50_ms_median": median([c["p50_ms"] for c in constant]),
            "p99_ms_median": median([c["p99_ms"] for c in constant]),
            "server_cpu_ms_per_req_median": median([c["server_cpu_ms_per_req"] for c in constant]),
            "server_busy_median": median([c["server_busy"] for c in constant]),
            "runs": constant,
        },
        "query": {
            "rps_median": round(query_rps),
            "p50_ms_median": median([q["p50_ms"] for q in query]),
            "p99_ms_median": p99,
            "non_2xx_share_median": median([q["non_2xx_share"] for q in query]),
            "server_cpu_ms_per_req_median": median([q["server_cpu_ms_per_req"] for q in query]),
            "pg_cpu_ms_per_req_median": median([q["pg_cpu_ms_per_req"] for q in query]),
            "server_busy_median": median([q["server_busy"] for q in query]),
            "pg_sessions_opened_median": median([q["pg_sessions_opened"] for q in query]),
            "machine_busy_cores_median": median([q["machine_busy_cores"] for q in query]),
            "runs": query,
        },
        "ratio_median": round(ratio, 4),
        "ratio_per_run": [
            round(q["rps"] / c["rps"], 4) for c, q in zip(constant, query, strict=True)
        ],
        "targets": {
            "ratio_ge_40pct": ratio >= TARGET_RATIO,
            "p99_lt_50ms": p99 < TARGET_P99_MS,
        },
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    c, q = result["constant"], result["query"]
    ok = result["targets"]
    return [
        f"verified query: {q['rps_median']:,} req/s vs constant {c['rps_median']:,} req/s "
        f"-> ratio {result['ratio_median']:.1%} (target >= 40%: "
        f"{'met' if ok['ratio_ge_40pct'] else 'MISSED'})",
        f"  query latency p50 {q['p50_ms_median']:.1f} ms, p99 {q['p99_ms_median']:.1f} ms "
        f"(target p99 < 50 ms: {'met' if ok['p99_lt_50ms'] else 'MISSED'}); "
        f"non-2xx {q['non_2xx_share_median']:.2%}",
        f"  CPU per query: server {q['server_cpu_ms_per_req_median']:.2f} ms + PostgreSQL "
        f"{q['pg_cpu_ms_per_req_median']:.2f} ms (constant: server "
        f"{c['server_cpu_ms_per_req_median']:.3f} ms); server process busy "
        f"{q['server_busy_median']:.0%} of one core; "
        f"{q['pg_sessions_opened_median']:.0f} PostgreSQL sessions opened per run",
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("query", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
