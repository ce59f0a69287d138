"""Benchmark: the deployment under a scenario mix (issue 13, item 3).

Brings up (or reuses) `make deploy-local`'s deployment with ``--api-procs`` API
processes, loads ``--vehicles`` vehicles of the demo fleet into it with `ctplhub import`
(on top of the demo's; a second run with more vehicles imports only the rest), then
drives a wrk mix through nginx on :8080 (``wrk_mix.py``): owner queries with their
verification factor 90 %, police bulk verify 8 %, signed insurer events 2 % (each a new
policy, signed in Lua as it leaves, so accepted with ``201``). Records throughput, p50
and p99 (wrk's, over the mix), each kind's count, statuses and latency (nginx's access
log), the CPU of every part (each API process, the worker, nginx, PgBouncer, Redis, both
PostgreSQL clusters, from /proc) and their memory.

Then the owner query alone (``bench_query``'s bodies), with one API process and with two:
the issue asks two to reach >= 1.7 x one. The deployment is left with ``--api-procs``.

Writes ``bench/out/load.json`` and ``bench/out/load.md``.

    .venv/bin/python bench/bench_load.py                                  # a smoke run
    .venv/bin/python bench/bench_load.py --vehicles 1000000 --duration 60 --connections 64
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from typing import Any

from common import OUT, log, spread
from deployment import (
    BASE,
    CpuWindow,
    deploy_up,
    ensure_fleet,
    ingest_templates,
    insurer_keys,
    log_offset,
    machine_info,
    memory_snapshot,
    police_token,
    requests_since,
    write_outputs,
    wrk,
)
from measure import query_script
from wrk_mix import mix_script, selftest_script, template_of

RATIO_TARGET = 1.7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vehicles",
        type=int,
        default=5_000,
        help="vehicles imported beyond the demo's (e.g. 200000 to 1000000)",
    )
    parser.add_argument("--api-procs", type=int, default=2, help="API processes for the mix")
    parser.add_argument("--duration", type=float, default=20, help="seconds of the measured mix")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--pairs", type=int, default=5_000, help="distinct vehicles queried")
    parser.add_argument(
        "--verify-items",
        type=int,
        default=1,
        help="plates per police verify call (1: a roadside check)",
    )
    parser.add_argument(
        "--templates", type=int, default=2_000, help="distinct vehicles the events are written for"
    )
    parser.add_argument(
        "--ratio-duration",
        type=float,
        default=15,
        help="seconds of each owner-query-only run (0: skip the 1 vs 2 ratio)",
    )
    parser.add_argument("--out", default="load", help="bench/out/<out>.json and .md")


def mix_inputs(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    """The bodies the mix cycles over, from the imported fleet's vehicles."""
    pairs = spread([tuple(p) for p in state["pairs"]], args.pairs)
    if not pairs:
        raise SystemExit("no imported vehicles to query: --vehicles must be > 0")
    queries = [json.dumps({"plate": p, "vin_last6": t}, ensure_ascii=False) for p, t in pairs]
    plates = [p for p, _ in pairs]
    k = max(1, args.verify_items)
    verifies = [
        json.dumps(
            {
                "items": [{"plate": plates[(i + j) % len(plates)]} for j in range(k)],
                "purpose": "roadside_check",
            },
            ensure_ascii=False,
        )
        for i in range(0, max(len(plates), 1), k)
    ]
    templates = [template_of(e) for e in ingest_templates(args.templates)]
    return {"queries": queries, "verifies": verifies, "templates": templates, "pairs": pairs}


def write_mix(
    args: argparse.Namespace, inputs: dict[str, Any], rate: float = 0.0, name: str = "mix"
):  # type: ignore[no-untyped-def]
    return mix_script(
        OUT / f"load-{name}.lua",
        queries=inputs["queries"],
        verifies=inputs["verifies"],
        templates=inputs["templates"],
        keys=insurer_keys(),
        police_token=police_token(),
        run_tag=secrets.token_hex(4).upper(),  # a new tag per script: new policy numbers
        threads=args.threads,
        rate=rate,
    )


def lua_selftest() -> None:
    """The Lua SHA-256 and HMAC against Python's, before any event is signed with them."""
    cases = [("k", ""), ("s" * 80, "POST\n/v1/policy-events\n1\nn\n" + "苏E·12345" * 40)]
    cases += [("abc", "a" * n) for n in (55, 56, 63, 64, 119, 120)]
    script = selftest_script(OUT / "load-selftest.lua", cases)
    argv = ["wrk", "-t1", "-c1", "-d1s", "-s", str(script), BASE + "/healthz"]
    lines = subprocess.run(argv, capture_output=True, text=True, check=False).stdout.splitlines()
    expected = [
        hashlib.sha256(m.encode()).hexdigest()
        + " "
        + hmac.new(k.encode(), m.encode(), hashlib.sha256).hexdigest()
        for k, m in cases
    ]
    if lines != expected:
        raise SystemExit(f"the Lua SHA-256/HMAC disagrees with Python's: {lines} != {expected}")


def measured(
    script: Any, args: argparse.Namespace, duration: float, path: str = "/"
) -> dict[str, Any]:
    """One wrk run with the CPU of every part and nginx's per-kind view of it."""
    offset = log_offset()
    window = CpuWindow()
    window.start()
    result = wrk(
        script, duration=duration, connections=args.connections, threads=args.threads, path=path
    )
    result["cpu"] = window.stop(result["requests"])
    time.sleep(0.5)  # nginx writes its log lines as each request ends
    result["kinds"] = requests_since(offset)
    result["memory"] = memory_snapshot()
    return result


def owner_query_only(
    args: argparse.Namespace, inputs: dict[str, Any], procs: int
) -> dict[str, Any]:
    deploy_up(procs)
    script = query_script(inputs["pairs"], OUT / "load-query-only.lua")
    path = "/v1/coverage/query"
    if args.warmup > 0:
        wrk(
            script,
            duration=args.warmup,
            connections=args.connections,
            threads=args.threads,
            path=path,
        )
    result = measured(script, args, args.ratio_duration, path)
    log(
        f"  owner query only, {procs} API process(es): {result['rps']:,.0f} req/s, p50 "
        f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, non-2xx {result['non_2xx']}"
    )
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    deploy_up(args.api_procs)
    lua_selftest()
    state = ensure_fleet(args.vehicles)
    inputs = mix_inputs(args, state)
    log(
        f"mix: {len(inputs['queries']):,} query bodies, {len(inputs['verifies']):,} verify "
        f"bodies ({args.verify_items} plate(s) each), {len(inputs['templates']):,} event templates"
    )
    if args.warmup > 0:
        offset = log_offset()
        wrk(
            write_mix(args, inputs, name="warmup"),
            duration=args.warmup,
            connections=args.connections,
            threads=args.threads,
        )
        time.sleep(0.5)
        log(
            "  warm-up: "
            + json.dumps({k: v["statuses"] for k, v in requests_since(offset).items()})
        )
    mix = measured(write_mix(args, inputs), args, args.duration)
    log(
        f"  mix: {mix['rps']:,.0f} req/s, p50 {mix['p50_ms']:.1f} ms, p99 {mix['p99_ms']:.1f} ms, "
        f"non-2xx {mix['non_2xx']}, socket errors {mix['socket_errors']}"
    )
    ratio: dict[str, Any] | None = None
    if args.ratio_duration > 0:
        one = owner_query_only(args, inputs, 1)
        two = owner_query_only(args, inputs, 2)
        deploy_up(args.api_procs)
        ratio = {
            "one_process": one,
            "two_processes": two,
            "ratio": round(two["rps"] / max(one["rps"], 1e-9), 3),
            "target": RATIO_TARGET,
        }
        ratio["met"] = ratio["ratio"] >= RATIO_TARGET
    return {
        "benchmark": "load",
        "vehicles_imported": state["vehicles"],
        "imports": state["imports"],
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency",
        "mix_shares": {"owner_query": 0.90, "police_verify": 0.08, "ingest": 0.02},
        "verify_items": args.verify_items,
        "api_processes": args.api_procs,
        "mix": mix,
        "owner_query_ratio": ratio,
        "machine": machine_info(),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    mix = result["mix"]
    lines = [
        f"### Load: the mix through nginx, {result['api_processes']} API processes, "
        f"{result['vehicles_imported']:,} imported vehicles",
        "",
        f"`{result['wrk']}`: **{mix['rps']:,.0f} req/s**, p50 {mix['p50_ms']:.1f} ms, "
        f"p99 {mix['p99_ms']:.1f} ms (wrk, over the mix); non-2xx {mix['non_2xx']}, socket "
        f"errors {mix['socket_errors']}.",
        "",
        "| kind | requests | share | statuses (nginx) | errors | nginx p50 ms | nginx p99 ms |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    total = sum(k["requests"] for k in mix["kinds"].values()) or 1
    for kind, k in sorted(mix["kinds"].items()):
        statuses = ", ".join(f"{s}: {n:,}" for s, n in k["statuses"].items())
        lines.append(
            f"| {kind} | {k['requests']:,} | {k['requests'] / total:.1%} | {statuses} | "
            f"{k['errors']:,} | {k['nginx_p50_ms']:.0f} | {k['nginx_p99_ms']:.0f} |"
        )
    lines += [
        "",
        'errors: every status but 2xx and 499 (nginx\'s "client closed first": the '
        "requests in flight when wrk's duration ends, at most one per connection).",
    ]
    lines += [
        "",
        "| part | CPU cores | CPU ms/request | RSS MB | PSS MB | processes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, cpu in mix["cpu"]["parts"].items():
        mem = mix["memory"].get(name, {})
        lines.append(
            f"| {name} | {cpu['cores']:.2f} | {cpu['cpu_ms_per_req']:.3f} | "
            f"{mem.get('rss_mb', 0):.0f} | {mem.get('pss_mb', 0):.0f} | {mem.get('processes', 0)} |"
        )
    lines.append(f"| machine | {mix['cpu']['machine_busy_cores']:.2f} | | | | |")
    ratio = result["owner_query_ratio"]
    if ratio:
        one, two = ratio["one_process"], ratio["two_processes"]
        lines += [
            "",
            "| owner query only | req/s | p50 ms | p99 ms | non-2xx |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['non_2xx']} |"
                for label, r in (("1 API process", one), ("2 API processes", two))
            ),
            "",
            f"Two processes / one: **{ratio['ratio']:.2f}x** (target >= {ratio['target']}: "
            f"{'met' if ratio['met'] else 'MISSED'}) on {result['machine']['nproc']} cores.",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    result = run(args)
    lines = markdown(result)
    json_path, md_path = write_outputs(args.out, result, lines)
    print("\n".join(lines))
    log(f"written {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
