"""Benchmark: the soak (issue 13, item 4): the load mix for ``--minutes`` at 70 % of the
peak, with no errors and flat memory.

Brings up (or reuses) the deployment and its imported fleet as ``bench_load.py`` does
(same flags), then runs the same mix (``wrk_mix.py``: owner queries 90 %, police verify
8 %, signed events 2 %) paced to ``--rate`` requests/s in all. Without ``--rate``, the
peak is measured first (``--peak-seconds`` of the mix as fast as it goes, or read from a
``bench_load.py`` result with ``--peak-from bench/out/load.json``) and the rate is
``--share`` (0.7) of it. wrk has no fixed-rate mode: the script's ``delay()`` hands out
evenly spaced send slots (``wrk_mix.py``).

Every ``--sample-s`` (10) seconds: each API process's and the worker's RSS (and every
other part's), and nginx's log so far. At the end: every answer other than 2xx (nginx,
per kind, and wrk's non-2xx and socket errors), and the memory slope of each process
(least squares over the samples after ``--warmup-minutes``, MB per hour). An API process
that restarted during the soak (its pid changed) is reported.

Writes ``bench/out/soak.json`` and ``bench/out/soak.md``.

    .venv/bin/python bench/bench_soak.py --minutes 1                      # a smoke run
    .venv/bin/python bench/bench_soak.py --minutes 30 --peak-from bench/out/load.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_load import add_arguments as load_arguments
from bench_load import lua_selftest, measured, mix_inputs, write_mix
from common import log
from deployment import (
    BASE,
    api_pids,
    deploy_up,
    ensure_fleet,
    log_offset,
    machine_info,
    memory_snapshot,
    parse_wrk,
    requests_since,
    write_outputs,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    load_arguments(parser)
    parser.set_defaults(out="soak", duration=20, ratio_duration=0)
    parser.add_argument("--minutes", type=float, default=30, help="length of the soak")
    parser.add_argument(
        "--rate", type=float, default=0, help="requests/s in all (0: --share of peak)"
    )
    parser.add_argument("--share", type=float, default=0.7, help="share of the peak to run at")
    parser.add_argument(
        "--peak-seconds",
        type=float,
        default=20,
        help="length of the peak run when neither --rate nor --peak-from",
    )
    parser.add_argument(
        "--peak-from", type=Path, help="a bench_load.py JSON: its mix's req/s is the peak"
    )
    parser.add_argument("--sample-s", type=float, default=10, help="seconds between samples")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="samples left out of the slopes (default: a sixth of the soak, at most 5 min)",
    )


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (m - mean_m) for t, m in points)
    return cov / var * 3600


class Sampler:
    """Every ``every`` seconds, the memory of every part, until stopped."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append(
                {
                    "t_s": round(time.monotonic() - self.started, 1),
                    "api_pids": api_pids(),
                    "memory": memory_snapshot(),
                }
            )
            if self.stop.wait(self.every):
                return


def peak_rate(args: argparse.Namespace, inputs: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    if args.peak_from:
        loaded = json.loads(args.peak_from.read_text())
        rps = float(loaded["mix"]["rps"])
        return rps, {"from": str(args.peak_from), "rps": rps}
    log(f"measuring the peak: {args.peak_seconds:g} s of the mix, unpaced")
    result = measured(write_mix(args, inputs, name="peak"), args, args.peak_seconds)
    return float(result["rps"]), {"measured_s": args.peak_seconds, **result}


def run(args: argparse.Namespace) -> dict[str, Any]:
    deploy_up(args.api_procs)
    lua_selftest()
    state = ensure_fleet(args.vehicles)
    inputs = mix_inputs(args, state)
    peak: dict[str, Any] | None = None
    rate = args.rate
    if rate <= 0:
        peak_rps, peak = peak_rate(args, inputs)
        rate = peak_rps * args.share
    warmup_min = (
        args.warmup_minutes if args.warmup_minutes is not None else min(5.0, args.minutes / 6)
    )
    script = write_mix(args, inputs, rate=rate, name="soak")
    seconds = args.minutes * 60
    log(
        f"soak: {args.minutes:g} min at {rate:,.0f} req/s ({args.connections} connections, "
        f"{args.threads} threads); samples every {args.sample_s:g} s, slopes after "
        f"{warmup_min:.1f} min"
    )
    offset = log_offset()
    sampler = Sampler(args.sample_s)
    pids_before = api_pids()
    argv = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout=10s",
        "-s",
        str(script),
        BASE + "/",
    ]
    sampler.start()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    sampler.join()
    time.sleep(0.5)
    wrk_result = parse_wrk(done.stdout)
    kinds = requests_since(offset)
    pids_after = api_pids()
    processes: dict[str, Any] = {}
    names = sorted({name for s in sampler.samples for name in s["memory"]})
    for name in names:
        series = [
            (s["t_s"], s["memory"][name]["rss_mb"]) for s in sampler.samples if name in s["memory"]
        ]
        after = [(t, m) for t, m in series if t >= warmup_min * 60]
        slope = slope_mb_per_hour(after)
        pss = slope_mb_per_hour(
            [
                (s["t_s"], s["memory"][name]["pss_mb"])
                for s in sampler.samples
                if name in s["memory"] and s["t_s"] >= warmup_min * 60
            ]
        )
        processes[name] = {
            "rss_mb_first": series[0][1] if series else None,
            "rss_mb_after_warmup": after[0][1] if after else None,
            "rss_mb_last": series[-1][1] if series else None,
            "rss_mb_max": max(m for _, m in series) if series else None,
            "slope_mb_per_hour": round(slope, 2) if slope is not None else None,
            "pss_slope_mb_per_hour": round(pss, 2) if pss is not None else None,
            "samples_in_slope": len(after),
        }
    errors = sum(k["errors"] for k in kinds.values())
    sockets = sum(wrk_result["socket_errors"].values())
    return {
        "benchmark": "soak",
        "minutes": args.minutes,
        "target_rate": round(rate, 1),
        "achieved_rate": wrk_result["rps"],
        "share_of_peak": args.share if args.rate <= 0 else None,
        "peak": peak,
        "wrk": " ".join(argv[:6]),
        "api_processes": args.api_procs,
        "vehicles_imported": state["vehicles"],
        "result": wrk_result,
        "kinds": kinds,
        "errors": {
            "nginx_non_2xx_but_499": errors,
            "wrk_non_2xx": wrk_result["non_2xx"],
            "wrk_socket_errors": sockets,
        },
        "no_errors": errors == 0 and wrk_result["non_2xx"] == 0 and sockets == 0,
        "api_restarted": pids_before != pids_after,
        "api_pids": {"before": pids_before, "after": pids_after},
        "warmup_minutes": warmup_min,
        "processes": processes,
        "samples": sampler.samples,
        "machine": machine_info(),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    r = result["result"]
    lines = [
        f"### Soak: {result['minutes']:g} min of the mix at {result['target_rate']:,.0f} req/s "
        f"(achieved {result['achieved_rate']:,.0f}), {result['api_processes']} API processes",
        "",
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['requests']:,} requests; "
        f"errors: {result['errors']} -> **{'none' if result['no_errors'] else 'SOME'}**; "
        f"API processes restarted: {'yes' if result['api_restarted'] else 'no'}.",
        "",
        "| kind | requests | statuses (nginx) | errors |",
        "|---|---:|---|---:|",
    ]
    for kind, k in sorted(result["kinds"].items()):
        statuses = ", ".join(f"{s}: {n:,}" for s, n in k["statuses"].items())
        lines.append(f"| {kind} | {k['requests']:,} | {statuses} | {k['errors']:,} |")
    lines += [
        "",
        f"Memory (RSS), slope by least squares over the samples after "
        f"{result['warmup_minutes']:.1f} min (PostgreSQL and nginx: all their processes, "
        "RSS counting shared memory in each, so PSS is the figure to read there):",
        "",
        "| process | RSS MB first | after warm-up | last | max | slope MB/hour "
        "| PSS slope MB/hour | samples |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, p in result["processes"].items():
        slope = "n/a" if p["slope_mb_per_hour"] is None else f"{p['slope_mb_per_hour']:+.1f}"
        pss = "n/a" if p["pss_slope_mb_per_hour"] is None else f"{p['pss_slope_mb_per_hour']:+.1f}"
        lines.append(
            f"| {name} | {p['rss_mb_first']:.0f} | {p['rss_mb_after_warmup'] or 0:.0f} | "
            f"{p['rss_mb_last']:.0f} | {p['rss_mb_max']:.0f} | {slope} | {pss} | "
            f"{p['samples_in_slope']} |"
        )
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
    return 0 if result["no_errors"] and not result["api_restarted"] else 1


if __name__ == "__main__":
    sys.exit(main())
