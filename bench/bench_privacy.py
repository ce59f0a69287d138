"""Benchmark of issue 7: what throttling and the access log cost a verified query.

The figure: with throttling and the access log on, the verified query keeps at least 90 %
of its throughput with them off, in the same run, on the same data, on each engine.

"With them off" is this code with ``CTPLHUB_RATE_LIMITS=off`` and the access log's
``record`` made a no-op in an exported copy (``without_log_source``), for measurement
only: the access log has no switch, on purpose (a registry that can stop recording who
read whose data is one an insider can blind). Beside it: this code with the limits off
only (the throttle's share), and the code before issue 7 (``--baseline-rev``, exported
from git and served by the same Python and packages: what an upgrade costs, all of
issue 7's answer-path changes included).

Each server is `ctplhub serve` (one process) on the 1M-policy database of the query
benchmark (loaded by `ctplhub import`, nothing else); ``wrk -t2 -c32`` POSTs verified
queries cycling over ``--pairs`` vehicles, all from one client address, all answered (pairs
that do not answer 200 are left out first: a verified owner is never throttled, only
failures count). Rounds alternate
without → with → limits off → both off, ``--repeats`` times; medians and ratios are reported, with
the access-log rows the "with" server wrote, which prove it was recording.

The log's size matters on PostgreSQL (docs/PERFORMANCE.md §7): ``--log-rows N`` first
fills it to N entries spread over the past 12 months (``access_log_fill.py``; not again
once it holds that many), and the run prints how many rows it holds when measuring
starts and, on PostgreSQL, the size of the current month's partition, where the "with"
server's inserts go.

    .venv/bin/python bench/bench_privacy.py --reuse --duration 10 --repeats 3
    .venv/bin/python bench/bench_privacy.py --reuse --engines postgresql --log-rows 1000000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from typing import Any

import httpx
from access_log_fill import current_partition, fill_access_log
from bench_ingest import baseline_source
from bench_query import _measured, _summary, precheck
from common import (
    OUT,
    PYTHON,
    ROOT,
    Home,
    add_query_db_arguments,
    add_wait_quiet,
    bench_main,
    count_rows,
    log,
    median,
    server,
    spread,
)
from loading import query_homes
from measure import query_script, run_wrk, wait_quiet

TARGET = 0.90
VARIANTS = ("without", "with", "limits_off", "both_off")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.add_argument("--baseline-rev", default="2129812", help="the code without them")
    parser.add_argument("--pairs", type=int, default=5_000, help="distinct vehicles queried")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=4, help="seconds of unmeasured load")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    parser.add_argument(
        "--log-rows",
        type=int,
        default=0,
        help="fill the access log to N entries over the past 12 months before measuring",
    )
    add_wait_quiet(parser)


_NO_RECORD = (
    "    def record(self, reader: Reader, vin: str, at: datetime) -> None:\n",
    "    def record(self, reader: Reader, vin: str, at: datetime) -> None:\n"
    "        return  # bench_privacy: the access log off\n",
)


def without_log_source() -> list[str]:
    """``[python, src folder]`` of this code (HEAD) with the access log's ``record`` made a
    no-op: a copy for measurement only, never a setting of the product."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = OUT / f"nolog-{head}"
    if not (folder / "src" / "ctplhub").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", head, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        module = folder / "src" / "ctplhub" / "security" / "access_log.py"
        text = module.read_text()
        if _NO_RECORD[0] not in text:
            raise RuntimeError("access_log.record moved: update bench_privacy._NO_RECORD")
        module.write_text(text.replace(*_NO_RECORD))
    return [PYTHON, str(folder / "src")]


def answered(base: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    with httpx.Client(base_url=base, timeout=10) as client:
        return [
            (plate, tail)
            for plate, tail in pairs
            if client.post(
                "/v1/coverage/query", json={"plate": plate, "vin_last6": tail}
            ).status_code
            == 200
        ]


def run_engine(args: argparse.Namespace, home: Home, state: dict[str, Any]) -> dict[str, Any]:
    engine = home.engine
    pairs = spread([tuple(p) for p in state["pairs"]], args.pairs)
    script = query_script(pairs, OUT / f"privacy-{engine}.lua")
    db = home.db if engine == "postgresql" else None
    wrk = {"connections": args.connections, "threads": args.threads}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    if args.log_rows:
        fill_access_log(home, args.log_rows)
    logged_before = count_rows(home, "access_log") or 0
    partition_before = current_partition(home)
    log(f"privacy bench on {engine}: the access log holds {logged_before:,} rows")
    if partition_before is not None:
        log(f"  current month's partition: {_partition_text(partition_before)}")
    baseline = baseline_source(args.baseline_rev)
    with (
        server(home, name=f"privacy-without-{engine}", code=baseline) as without,
        server(home, name=f"privacy-with-{engine}") as with_,
        server(home, name=f"privacy-off-{engine}", env_extra={"CTPLHUB_RATE_LIMITS": "off"}) as off,
        server(
            home,
            name=f"privacy-both-off-{engine}",
            code=without_log_source(),
            env_extra={"CTPLHUB_RATE_LIMITS": "off"},
        ) as both_off,
    ):
        # Only pairs that answer 200: 30 wrong factors from one address in 10 minutes would
        # turn the rest of a throttled run into quick 429s. Sifted on the server without a
        # throttle, so that the sifting spends no budget.
        kept = answered(without.base, pairs)
        if len(kept) < len(pairs):
            log(f"  {len(pairs) - len(kept)} of {len(pairs):,} pairs do not answer 200: left out")
            pairs = kept
            script = query_script(pairs, OUT / f"privacy-{engine}.lua")
        servers = {"without": without, "with": with_, "limits_off": off, "both_off": both_off}
        checks = {name: precheck(srv.base, pairs, n=100) for name, srv in servers.items()}
        log(f"privacy bench on {engine}: prechecks {checks}")
        if args.warmup > 0:
            for srv in servers.values():
                run_wrk(f"{srv.base}/v1/coverage/query", duration=args.warmup, script=script, **wrk)
        for attempt in range(1, args.repeats + 1):
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            for name, srv in servers.items():
                url = f"{srv.base}/v1/coverage/query"
                rounds[name].append(_measured(srv, db, url, args, script=script))
            w, o, f, b = (rounds[name][-1] for name in VARIANTS)
            log(
                f"  run {attempt}: without {w['rps']:,.0f} | with {o['rps']:,.0f} "
                f"(p99 {o['p99_ms']:.1f} ms, non-2xx {o['non_2xx_share']:.2%}) | limits off "
                f"{f['rps']:,.0f} | both off {b['rps']:,.0f} req/s -> with/without "
                f"{o['rps'] / w['rps']:.1%}, with/both off {o['rps'] / b['rps']:.1%}; CPU per "
                f"request {w['server_cpu_ms_per_req']:.3f} / {o['server_cpu_ms_per_req']:.3f} "
                f"/ {f['server_cpu_ms_per_req']:.3f} / {b['server_cpu_ms_per_req']:.3f} ms"
            )
    logged = (count_rows(home, "access_log") or 0) - logged_before
    partition_after = current_partition(home)
    if partition_after is not None:
        log(f"  current month's partition after: {_partition_text(partition_after)}")
    ratio = median([r["rps"] for r in rounds["with"]]) / median(
        [r["rps"] for r in rounds["without"]]
    )
    both_off = median([r["rps"] for r in rounds["both_off"]])
    return {
        "engine": engine,
        "ratio_with_over_both_off": round(median([r["rps"] for r in rounds["with"]]) / both_off, 4),
        "ratio_per_run_both_off": [
            round(o["rps"] / b["rps"], 4)
            for b, o in zip(rounds["both_off"], rounds["with"], strict=True)
        ],
        "db": home.db,
        "baseline_rev": args.baseline_rev,
        "prechecks": checks,
        **{name: _summary(runs) for name, runs in rounds.items()},
        "ratio_with_over_without": round(ratio, 4),
        "ratio_per_run": [
            round(o["rps"] / w["rps"], 4)
            for w, o in zip(rounds["without"], rounds["with"], strict=True)
        ],
        "access_log_rows_written": logged,
        "access_log_rows_at_start": logged_before,
        "current_month_partition": {"start": partition_before, "end": partition_after},
        # The figure: "keeps >= 90 % of its throughput with them off", i.e. this
        # code with both off; the code before issue 7 is context (what an upgrade costs).
        "target_ratio_ge_0.90": median([r["rps"] for r in rounds["with"]]) / both_off >= TARGET,
    }


def _partition_text(partition: dict[str, Any]) -> str:
    if partition["bytes"] is None:
        return f"{partition['partition']} does not exist"
    return (
        f"{partition['partition']} {partition['bytes'] / 2**20:,.1f} MB "
        f"(indexes {partition['index_bytes'] / 2**20:,.1f} MB), "
        f"{partition['rows']:,} rows"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    homes = query_homes(args)
    return {
        "benchmark": "privacy",
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency",
        "repeats": args.repeats,
        "engines": {engine: run_engine(args, *homes[engine]) for engine in args.engines},
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, e in result["engines"].items():
        w, o, f, b = (e[name] for name in VARIANTS)
        lines.append(
            f"verified query on {engine}: with throttling and the access log "
            f"{o['rps_median']:,} req/s, this code with both off {b['rps_median']:,} req/s -> "
            f"{e['ratio_with_over_both_off']:.1%} (target >= {TARGET:.0%}: "
            f"{'met' if e['target_ratio_ge_0.90'] else 'MISSED'}); limits off "
            f"{f['rps_median']:,} req/s; the code before issue 7 ({e['baseline_rev']}) "
            f"{w['rps_median']:,} req/s -> {e['ratio_with_over_without']:.1%}; "
            f"p99 with {o['p99_ms_median']:.1f} ms; "
            f"{e['access_log_rows_written']:,} access-log rows written to a log of "
            f"{e['access_log_rows_at_start']:,}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    return bench_main("privacy", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
