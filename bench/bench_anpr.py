"""Benchmark: one ``ctplhub anpr run`` consumer on the 1M-policy PostgreSQL database
keeping up with ``--rate`` reads/s (issue 14: 5,000/s, 2 % uninsured), and the time from a
camera publishing a read to its alert being published (p99 under 1 s).

    .venv/bin/python bench/bench_anpr.py --reuse --wait-quiet 300         # the issue's figures
    .venv/bin/python bench/bench_anpr.py --reuse --rate 2000 --duration 20
    .venv/bin/python bench/bench_anpr.py --reuse --rate 2000 --duration 20 --profile
    .venv/bin/python bench/bench_anpr.py --db ctplhub_bench_smoke --policies 20000 \\
        --rate 500 --duration 10                                          # smoke: a minute

(``--profile`` runs the consumer under cProfile into ``bench/out/anpr-consumer.prof``;
its figures are then not the consumer's.)

The query benchmarks' database (``--db``, loaded by ``ctplhub import``; ``--reuse`` keeps
one) is read by a consumer process started here with ``--metrics-port``, on a Mosquitto
of the benchmark's own (``anpr_load.py``: the shared broker on 1883 is never used), on a
fresh topic root and client id. The alerts and remembered read ids of earlier runs are
deleted first, and every camera stands in a region of its own, drawn for the run, so
that the 24-hour rule (one alert per plate and region) lets each uncovered read raise its
alert. Cameras (one process, paced by a token bucket, QoS 1 publishes pipelined) publish
reads of the loaded fleet (``ctplhub anpr simulate``'s reads: OCR errors, low
confidence, repeats) for ``--duration`` s.

Measured, and printed as JSON (also ``bench/out/bench_anpr.json``):
- the rate published (acknowledged by the broker) and the rate consumed (the consumer's
  ``ctplhub_anpr_reads_total``) over the steady part (after the first quarter);
- the backlog (published minus consumed) every half second, its largest value, and how
  long after the last publish it drained: the consumer keeps up when the backlog stays
  bounded and drains within ``KEPT_UP_DRAIN_S``;
- publish -> alert latency of every alert (publish instant kept by ``read_id`` in the
  cameras' process, arrival at a subscriber to ``{root}/alerts/+``): p50, p90, p99, max;
- CPU seconds of the consumer, its PostgreSQL backends, the broker and the cameras, and
  how busy the machine was (others share it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import subprocess
import sys
import time
import uuid
from typing import Any

from anpr_load import (
    AlertListener,
    bench_broker,
    forget_alerts,
    publish_cameras,
    scrape,
    wait_subscribed,
)
from common import (
    LOGS,
    OUT,
    Home,
    add_query_db_arguments,
    add_wait_quiet,
    bench_main,
    free_port,
    log,
)
from loading import query_homes
from measure import CpuMeter, _cpu_of, wait_quiet

DOC = __doc__ or ""
KEPT_UP_DRAIN_S = 5.0
SAMPLE_S = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.set_defaults(engines=["postgresql"])
    parser.add_argument("--rate", type=float, default=5_000, help="reads per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of publishing")
    parser.add_argument("--uninsured-share", type=float, default=0.02)
    parser.add_argument("--cameras", type=int, default=500)
    parser.add_argument(
        "--pool", type=int, default=10_000, help="vehicles of the fleet the cameras read"
    )
    parser.add_argument(
        "--window", type=int, default=1_000, help="QoS 1 publishes unacknowledged at once"
    )
    add_wait_quiet(parser)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the consumer under cProfile (bench/out/anpr-consumer.prof; CPU figures grow)",
    )


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 4)


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"rate": args.rate, "duration_s": args.duration}
    for engine, (home, state) in query_homes(args).items():
        results[engine] = measure(home, state, args)
    return results


def measure(home: Home, state: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One engine's run: broker and consumer started, reads published, alerts timed."""
    forget_alerts(home)
    with bench_broker() as (broker_port, broker_pid):
        root = f"bench{uuid.uuid4().hex[:8]}"
        metrics_port = free_port()
        env = {
            **home.env(),
            "CTPLHUB_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
            "CTPLHUB_MQTT_TOPIC_ROOT": root,
            "CTPLHUB_ANPR_CLIENT_ID": f"bench-{root}",
            "CTPLHUB_LOG_LEVEL": "WARNING",
        }
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / "anpr-consumer.log").open("w") as consumer_log:
            profile = ["-m", "cProfile", "-o", str(OUT / "anpr-consumer.prof")]
            consumer = subprocess.Popen(
                [
                    sys.executable,
                    *(profile if args.profile else []),
                    "-m",
                    "ctplhub.cli.anpr",
                    "run",
                    "--metrics-port",
                    str(metrics_port),
                ],
                env=env,
                stdout=consumer_log,
                stderr=consumer_log,
            )
            try:
                wait_subscribed(broker_port, root, metrics_port, consumer)
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                listener = AlertListener(broker_port, root)
                try:
                    return load(
                        home,
                        state,
                        args,
                        broker_port,
                        broker_pid,
                        root,
                        consumer.pid,
                        metrics_port,
                        listener,
                    )
                finally:
                    listener.close()
            finally:
                consumer.terminate()
                consumer.wait(30)


def load(
    home: Home,
    state: dict[str, Any],
    args: argparse.Namespace,
    broker_port: int,
    broker_pid: int,
    root: str,
    consumer_pid: int,
    metrics_port: int,
    listener: AlertListener,
) -> dict[str, Any]:
    """The cameras publish while the backlog and the consumer's CPU are sampled; then
    the drain is timed and each alert's latency taken from the cameras' publish times."""
    spawn = multiprocessing.get_context("spawn")
    sent, acked = spawn.Value("q", 0, lock=False), spawn.Value("q", 0, lock=False)
    started_at = spawn.Value("d", 0.0, lock=False)
    out = OUT / "anpr-publish.json"
    out.unlink(missing_ok=True)
    fleet = {
        "now": state["now"],
        "vehicles": int(state["vehicles"]),
        "pool": args.pool,
        "cameras": args.cameras,
        "uninsured_share": args.uninsured_share,
        "seed": uuid.uuid4().int % 1_000_000,
    }
    cameras = spawn.Process(
        target=publish_cameras,
        args=(broker_port, root, fleet),
        kwargs={
            "rate": args.rate,
            "duration": args.duration,
            "window": args.window,
            "started_at": started_at,
            "sent": sent,
            "acked": acked,
            "out": str(out),
        },
    )
    base = scrape(metrics_port)
    base_reads = base.get("ctplhub_anpr_reads_total", 0.0)
    cameras.start()
    while not started_at.value and cameras.is_alive():  # it samples the fleet first
        time.sleep(0.01)
    meter = CpuMeter(consumer_pid, home.db if home.engine == "postgresql" else None)
    meter.start()
    broker_cpu, cameras_cpu_before = _cpu_of(broker_pid), _cpu_of(cameras.pid or 0)
    started = started_at.value
    log(f"{home.engine}: publishing {args.rate:g} reads/s for {args.duration:g} s ...")
    series: list[tuple[float, int, int]] = []  # (s since start, acked, consumed)
    cameras_cpu = 0.0
    consumer_cpu = [(time.monotonic(), _cpu_of(consumer_pid))]  # cores it had, in turn
    while cameras.is_alive():
        cameras_cpu = _cpu_of(cameras.pid or 0) or cameras_cpu
        consumed = int(scrape(metrics_port).get("ctplhub_anpr_reads_total", 0.0) - base_reads)
        series.append((round(time.monotonic() - started, 2), acked.value, consumed))
        time.sleep(SAMPLE_S)
        consumer_cpu.append((time.monotonic(), _cpu_of(consumer_pid)))
    cameras.join()
    if cameras.exitcode != 0:
        raise RuntimeError(f"the cameras' process exited {cameras.exitcode}")
    published = json.loads(out.read_text())
    ended = started + published["publish_s"]
    total = published["acked"]
    consumed = 0
    while time.monotonic() - ended < 120:
        consumed = int(scrape(metrics_port).get("ctplhub_anpr_reads_total", 0.0) - base_reads)
        series.append((round(time.monotonic() - started, 2), total, consumed))
        if consumed >= total:
            break
        time.sleep(0.1)
    drained_after = max(0.0, time.monotonic() - ended)
    cpu = meter.stop()
    broker_cpu = _cpu_of(broker_pid) - broker_cpu
    counters = scrape(metrics_port)
    raised = int(
        counters.get("ctplhub_anpr_alerts_total", 0.0) - base.get("ctplhub_anpr_alerts_total", 0.0)
    )
    deadline = time.monotonic() + 10
    while listener.count() < raised and time.monotonic() < deadline:
        time.sleep(0.1)
    times = published["times"]
    arrived = dict(listener.arrived)
    latencies = [at - times[rid] for rid, at in arrived.items() if rid in times]
    # As for the rates: after the first quarter, once the consumer's caches and the
    # database's pages are warm (a consumer runs for months; its cold start is the
    # backlog above, drained in the first seconds).
    settled = started + args.duration / 4
    steady_latencies = [
        at - times[rid] for rid, at in arrived.items() if rid in times and times[rid] >= settled
    ]
    steady = [s for s in series if args.duration / 4 <= s[0] <= published["publish_s"]]

    def rate(column: int) -> float | None:
        if len(steady) < 2 or steady[-1][0] == steady[0][0]:
            return None
        return round((steady[-1][column] - steady[0][column]) / (steady[-1][0] - steady[0][0]))

    backlogs = [a - c for t, a, c in series if t <= published["publish_s"]]
    return {
        "policies_in_db": state.get("policies_in_db"),
        "published": published["sent"],
        "acknowledged": total,
        "publish_rate": round(published["sent"] / published["publish_s"]),
        "publish_rate_steady": rate(1),
        "consume_rate_steady": rate(2),
        "publisher_unacked_max": published["unacked_max"],
        "kinds": published["tally"],
        "consumed": consumed,
        "backlog_max": max(backlogs, default=0),
        "backlog_at_last_publish": backlogs[-1] if backlogs else 0,
        "backlog_drained_after_s": round(drained_after, 2),
        "kept_up": consumed >= total and drained_after <= KEPT_UP_DRAIN_S,
        "alerts_raised": raised,
        "alerts_received": listener.count(),
        "alerts_repeated": listener.repeats,
        "alerts_timed": len(latencies),
        "alert_latency_p50_s": percentile(latencies, 0.5),
        "alert_latency_p90_s": percentile(latencies, 0.9),
        "alert_latency_p99_s": percentile(latencies, 0.99),
        "alert_latency_max_s": round(max(latencies), 4) if latencies else None,
        "alerts_timed_steady": len(steady_latencies),
        "alert_latency_p50_steady_s": percentile(steady_latencies, 0.5),
        "alert_latency_p99_steady_s": percentile(steady_latencies, 0.99),
        "cpu_s": {
            "consumer": round(cpu["server_cpu_s"], 2),
            "postgresql": round(cpu["pg_cpu_s"], 2),
            "broker": round(broker_cpu, 2),
            "cameras": round(cameras_cpu - cameras_cpu_before, 2),
            "wall": round(cpu["wall_s"], 2),
            "machine_busy_cores": round(cpu["machine_busy_cores"], 2),
        },
        f"backlog_every_{SAMPLE_S}s": " ".join(
            str(a - c) for t, a, c in series if t <= published["publish_s"]
        ),
        f"consumer_cores_every_{SAMPLE_S}s": " ".join(
            f"{(c1 - c0) / (t1 - t0):.2f}"
            for (t0, c0), (t1, c1) in itertools.pairwise(consumer_cpu)
        ),
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine in ("postgresql", "sqlite"):
        r = result.get(engine)
        if not r:
            continue
        lines.append(
            f"{engine}: {r['publish_rate']:,} reads/s published, {r['consume_rate_steady']} "
            f"consumed (steady); backlog max {r['backlog_max']:,}, drained "
            f"{r['backlog_drained_after_s']} s after the last publish (kept up: "
            f"{r['kept_up']}); alert p50 {r['alert_latency_p50_s']} s, p99 "
            f"{r['alert_latency_p99_s']} s ({r['alerts_timed']} of {r['alerts_raised']} "
            f"alerts timed; after the first quarter p99 {r['alert_latency_p99_steady_s']} s "
            f"of {r['alerts_timed_steady']}); CPU s {r['cpu_s']} "
            "(target: keeps up at 5,000/s, p99 < 1 s)"
        )
    return lines


if __name__ == "__main__":
    sys.exit(bench_main("bench_anpr", DOC, add_arguments, run, summary_lines))
