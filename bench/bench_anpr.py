"""Benchmark: one ``ctplhub anpr run`` consumer on the 1M-policy PostgreSQL database
keeping up with ``--rate`` reads/s (issue 14: 5,000/s, 2 % uninsured), and the time from a
camera publishing a read to its alert being published (p99 under 1 s).

The query benchmarks' database (``--db``, loaded by ``ctplhub import``; ``--reuse`` keeps
one) is read by a consumer process started here on its own topic root and client id,
with ``--metrics-port``. ``ctplhub anpr simulate``'s read maker publishes from the bench
fleet's vehicles (OCR errors, low confidence, repeats), for ``--duration`` seconds; a
subscriber to ``{root}/alerts/+`` takes each alert's arrival time minus its read's
publish time. Keeping up: after the last publish, how long until the consumer's
``ctplhub_anpr_reads_total`` counter reaches the number published (the backlog drained).

    .venv/bin/python bench/bench_anpr.py --reuse
    .venv/bin/python bench/bench_anpr.py --reuse --rate 2000 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from common import add_query_db_arguments, bench_main, free_port, log
from loading import query_homes
from paho.mqtt.enums import CallbackAPIVersion

from ctplhub.anpr.broker import Broker
from ctplhub.anpr.simulate import ReadMaker, fleet_pools, publish_reads

DOC = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.set_defaults(engines=["postgresql"])
    parser.add_argument("--rate", type=float, default=5_000, help="reads per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of publishing")
    parser.add_argument("--uninsured-share", type=float, default=0.02)
    parser.add_argument("--cameras", type=int, default=500)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")


def counter(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"rate": args.rate, "duration_s": args.duration}
    for engine, (home, state) in query_homes(args).items():
        results[engine] = measure(engine, home, state, args)
    return results


def measure(
    engine: str, home: Any, state: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """One engine's run: the consumer started, reads published, alerts timed."""
    root = f"bench{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    env = {
        **home.env(),
        "CTPLHUB_MQTT_URL": args.broker,
        "CTPLHUB_MQTT_TOPIC_ROOT": root,
        "CTPLHUB_ANPR_CLIENT_ID": f"bench-{root}",
        "CTPLHUB_LOG_LEVEL": "WARNING",
    }
    consumer = subprocess.Popen(
        [sys.executable, "-m", "ctplhub.cli.anpr", "run", "--metrics-port", str(metrics_port)],
        env=env,
    )
    broker = Broker.from_url(args.broker)
    published_at: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def on_alert(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        arrived = time.perf_counter()
        read_id = json.loads(message.payload)["read_id"]
        with lock:
            sent = published_at.get(read_id)
            if sent is not None:
                latencies.append(arrived - sent)

    listener = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    listener.on_message = on_alert
    listener.connect(broker.host, broker.port)
    listener.loop_start()
    listener.subscribe(f"{root}/alerts/+", qos=1)
    try:
        time.sleep(3)  # the consumer connects and opens its pools
        now = datetime.fromisoformat(state["now"])
        covered, uncovered = fleet_pools(int(state["vehicles"]), now)

        class Timed(ReadMaker):
            def next(self) -> Any:
                read = super().next()
                with lock:
                    published_at.setdefault(read.read_id, time.perf_counter())
                return read

        maker = Timed(
            covered,
            uncovered,
            cameras=args.cameras,
            uninsured_share=args.uninsured_share,
            seed=1,
            clock=lambda: datetime.now(UTC),
        )
        log(f"{engine}: publishing {args.rate:g} reads/s for {args.duration:g} s ...")
        started = time.perf_counter()
        tally = asyncio.run(
            publish_reads(broker, root, maker, rate=args.rate, duration=args.duration)
        )
        publish_wall = time.perf_counter() - started
        sent = sum(tally.values())
        done = time.perf_counter()
        while counter(metrics_port, "ctplhub_anpr_reads_total") < sent:
            if time.perf_counter() - done > 300:
                break
            time.sleep(0.1)
        drained_after = time.perf_counter() - done
        time.sleep(1)
        return {
            "published": sent,
            "publish_rate": round(sent / publish_wall),
            "kinds": dict(tally),
            "consumed": counter(metrics_port, "ctplhub_anpr_reads_total"),
            "backlog_drained_after_s": round(drained_after, 2),
            "alerts_timed": len(latencies),
            "alert_latency_p50_s": percentile(latencies, 0.5),
            "alert_latency_p99_s": percentile(latencies, 0.99),
            "alert_latency_max_s": max(latencies, default=None),
            "policies_in_db": state.get("policies_in_db"),
        }
    finally:
        listener.loop_stop()
        listener.disconnect()
        consumer.terminate()
        consumer.wait(30)


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine in ("postgresql", "sqlite"):
        r = result.get(engine)
        if not r:
            continue
        lines.append(
            f"{engine}: {r['publish_rate']:,} reads/s published; backlog drained "
            f"{r['backlog_drained_after_s']} s after the last; alert p50 "
            f"{r['alert_latency_p50_s']} s, p99 {r['alert_latency_p99_s']} s "
            f"({r['alerts_timed']} alerts; target: keeps up at 5,000/s, p99 < 1 s)"
        )
    return lines


if __name__ == "__main__":
    sys.exit(bench_main("bench_anpr", DOC, add_arguments, run, summary_lines))
