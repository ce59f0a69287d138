"""Benchmark: the regulators' statistics at 1,000,000 policies (issue 12: each endpoint
under 1 s), on each engine.

It reuses (or loads) the query benchmark's database through ``loading.py`` (the demo
fleet's million policies over five insurers, loaded by `ctplhub import`), then:

1. ``ctplhub stats refresh --json --settle-s 0``: the aggregates' first build from every
   event (or, on a reused database already built, the events since), timed;
2. the same again, with nothing new: what a worker's idle pass costs;
3. against `ctplhub serve`, a regulator's ``GET /v1/stats/renewals`` (by insurer, by
   region, by month, over the last 365 days), ``/v1/stats/expiring?days=90`` and
   ``/v1/stats/lapses?group_by=region``, each as JSON and as CSV, ``--calls`` times
   after one warm-up call; the median of each is reported against the 1 s target.

    .venv/bin/python bench/bench_stats.py --reuse
    .venv/bin/python bench/bench_stats.py --db ctplhub_bench_stats_tiny --policies 2000 --calls 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx
from common import (
    Home,
    add_query_db_arguments,
    add_wait_quiet,
    bench_main,
    ctplhub,
    log,
    median,
    server,
)
from loading import query_homes
from measure import wait_quiet

TARGET_S = 1.0
# Reported beside the statistics, not held to their target: the lapse forecast's totals
# by region (issue 12 item 6), computed per request from the expiring vehicles' histories.
FORECAST = "/v1/forecast/lapse-risk?group_by=region&days=30"
ENDPOINTS = (
    "/v1/stats/renewals?group_by=insurer",
    "/v1/stats/renewals?group_by=region",
    "/v1/stats/renewals?group_by=month",
    "/v1/stats/expiring?days=90",
    "/v1/stats/lapses?group_by=region",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.add_argument("--calls", type=int, default=5, help="measured calls of each endpoint")
    add_wait_quiet(parser)


def refresh(home: Home) -> dict[str, Any]:
    started = time.perf_counter()
    proc = ctplhub(home, "stats", "refresh", "--json", "--settle-s", "0")
    report: dict[str, Any] = json.loads(proc.stdout)
    report["wall_s"] = round(time.perf_counter() - started, 3)
    return report


def regulator_token(home: Home) -> str:
    name = f"bench-regulator-{int(time.time() * 1000)}"
    proc = ctplhub(home, "user", "add", name, "--role", "regulator", "--json")
    token: str = json.loads(proc.stdout)["token"]
    return token


def time_calls(http: httpx.Client, path: str, accept: str, calls: int) -> dict[str, Any]:
    headers = {"Accept": accept}
    first = http.get(path, headers=headers)  # warm-up, and the answer's size
    first.raise_for_status()
    runs = []
    for _ in range(calls):
        started = time.perf_counter()
        http.get(path, headers=headers).raise_for_status()
        runs.append(time.perf_counter() - started)
    rows = len(first.json()["rows"]) if accept == "application/json" else None
    return {"median_s": round(median(runs), 4), "max_s": round(max(runs), 4), "rows": rows}


def run_engine(args: argparse.Namespace, home: Home, state: dict[str, Any]) -> dict[str, Any]:
    log(f"  {home.engine}: refreshing the statistics ...")
    build = refresh(home)
    log(f"  {home.engine}: {build['events']:,} events counted in {build['wall_s']:.1f} s")
    idle = refresh(home)
    token = regulator_token(home)
    timings: dict[str, Any] = {}
    with server(home, name=f"stats-{home.engine}") as srv:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=srv.base, headers=auth, timeout=120) as http:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            for path in ENDPOINTS:
                for accept in ("application/json", "text/csv"):
                    timed = time_calls(http, path, accept, args.calls)
                    timings[f"{path} {accept}"] = timed
                    log(f"  {home.engine} {path} ({accept}): {timed['median_s'] * 1000:.1f} ms")
            forecast = time_calls(http, FORECAST, "application/json", args.calls)
            log(f"  {home.engine} {FORECAST}: {forecast['median_s'] * 1000:.1f} ms")
    worst = max(t["median_s"] for t in timings.values())
    return {
        "engine": home.engine,
        "db": home.db,
        "policies": state.get("policies_in_db"),
        "refresh_build": build,
        "refresh_idle": idle,
        "endpoints": timings,
        "worst_median_s": worst,
        "forecast_by_region": forecast,
        "targets": {"each_endpoint_lt_1s": worst < TARGET_S},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    homes = query_homes(args)
    return {
        "benchmark": "stats",
        "calls": args.calls,
        "engines": {engine: run_engine(args, *homes[engine]) for engine in args.engines},
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, e in result["engines"].items():
        met = "met" if e["targets"]["each_endpoint_lt_1s"] else "MISSED"
        lines.append(
            f"stats on {engine}: {e['policies']:,} policies; refresh of "
            f"{e['refresh_build']['events']:,} events {e['refresh_build']['wall_s']:.1f} s, "
            f"idle refresh {e['refresh_idle']['wall_s']:.2f} s; slowest endpoint median "
            f"{e['worst_median_s'] * 1000:.0f} ms (target < 1 s: {met})"
        )
    return lines


if __name__ == "__main__":
    sys.exit(bench_main("bench_stats", __doc__ or "", add_arguments, run, summary_lines))
