"""The ANPR benchmark's load: a Mosquitto of its own, a camera fleet publishing at a
steady rate in a process of its own, and a police subscriber timing the alerts.

- **Broker**: ``mosquitto`` on a free port, configured as docs/anpr.md asks of production
  (persistence on, ``max_queued_messages`` 1,000,000, ``max_inflight_messages`` 2,000:
  reads out to the consumer unacknowledged, for MQTT 3.1.1). The shared broker on 1883
  keeps Mosquitto's default queue of 1,000 messages per session, which drops reads at
  5,000/s (PERFORMANCE §12), and is never touched.
- **Cameras**: one process (its own interpreter, so that its work does not delay the
  alert subscriber's clock readings), one MQTT 3.1.1 connection (``mqtt_wire.py``), QoS
  1 publishes pipelined up to ``window`` unacknowledged, paced by a token bucket.
  Reads come from ``ctplhub anpr simulate``'s ``ReadMaker``.
  Each read's publish instant (``time.monotonic``, one clock for every process on Linux)
  is kept by ``read_id`` and written to a file at the end.
- **Police**: a paho subscriber to ``{root}/alerts/+`` in the benchmark's process notes
  each alert's arrival instant.
- **Consumer**: its counters (``scrape``), a fresh alert state (``forget_alerts``), and a
  probe telling when it has subscribed (``wait_subscribed``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from common import LOGS, OUT, Home, db_url, free_port
from mqtt_wire import WirePublisher
from paho.mqtt.enums import CallbackAPIVersion

from ctplhub.anpr.broker import reads_topic
from ctplhub.anpr.simulate import ReadMaker, fleet_pools

BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {folder}/
autosave_interval 5
max_queued_messages 1000000
max_inflight_messages 2000
log_dest file {folder}/mosquitto.log
"""


@contextmanager
def bench_broker() -> Iterator[tuple[int, int]]:
    """A Mosquitto of our own, fresh (no sessions from an earlier run); yields (port, pid)."""
    if shutil.which("mosquitto") is None:
        raise RuntimeError("the ANPR benchmark needs mosquitto (apt-get install mosquitto)")
    folder = OUT / "anpr-broker"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    port = free_port()
    config = BROKER_CONFIG.format(port=port, folder=folder)
    if os.geteuid() == 0:  # as root, mosquitto would become "mosquitto", who cannot write here
        config += "user root\n"
    (folder / "mosquitto.conf").write_text(config)
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(folder / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start; see {folder}") from None
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def camera_regions(cameras: int, seed: int) -> list[str]:
    """A distinct 6-digit region code per camera, new for each run's seed: a plate read
    by two cameras is in two regions, so the 24-hour rule lets both raise an alert."""
    return [f"{code:06d}" for code in random.Random(seed).sample(range(10**6), cameras)]


def publish_cameras(
    port: int,
    root: str,
    fleet: dict[str, Any],
    *,
    rate: float,
    duration: float,
    window: int,
    started_at: Synchronized[float],
    sent: Synchronized[int],
    acked: Synchronized[int],
    out: str,
) -> None:
    """The cameras' process: publish ``rate`` reads/s for ``duration`` s, then wait for
    the last acknowledgements and write ``{tally, times, ...}`` to ``out`` (JSON).
    ``started_at`` is set to the first publish's instant, ``sent`` and ``acked`` follow
    the publishes as they go."""
    now = datetime.fromisoformat(fleet["now"])
    covered, uncovered = fleet_pools(fleet["vehicles"], now, pool=fleet["pool"])
    maker = ReadMaker(
        covered,
        uncovered,
        cameras=fleet["cameras"],
        uninsured_share=fleet["uninsured_share"],
        seed=fleet["seed"],
        clock=lambda: datetime.now(UTC),
        regions=camera_regions(fleet["cameras"], fleet["seed"]),
    )
    client = WirePublisher("127.0.0.1", port, f"bench-cameras-{os.getpid()}")
    times: dict[str, float] = {}
    tally: Counter[str] = Counter()
    unacked_max = 0
    # The token bucket: ``rate`` tokens a second, at most ``burst`` saved up, so a
    # publisher that falls behind (or whose window is full) shows a lower rate instead
    # of catching up in a burst.
    burst = max(1.0, rate * 0.05)
    tokens, count = 0.0, 0
    started = last = started_at.value = time.monotonic()
    while (clock := time.monotonic()) - started < duration:
        tokens = min(burst, tokens + (clock - last) * rate)
        last = clock
        due = min(int(tokens), window - len(client.unacked))
        if due > 0:
            tokens -= due
            batch = []
            for _ in range(due):
                read = maker.next()
                times.setdefault(read.read_id, time.monotonic())
                batch.append((reads_topic(root, read.camera_id), read.payload))
                tally[read.kind] += 1
            client.publish(batch)
            count += due
        unacked_max = max(unacked_max, len(client.unacked))
        client.read_acks(0.002)  # the PUBACKs in, ~2 ms a tick
        sent.value, acked.value = count, client.acked
    publish_s = time.monotonic() - started
    deadline = time.monotonic() + 60
    while client.unacked and time.monotonic() < deadline:
        client.read_acks(0.05)
    acked.value = acks = client.acked
    client.close()
    Path(out).write_text(
        json.dumps(
            {
                "sent": count,
                "acked": acks,
                "publish_s": publish_s,
                "unacked_max": unacked_max,
                "tally": dict(tally),
                "times": times,
            }
        )
    )


class AlertListener:
    """The police: every alert's ``read_id`` and arrival instant (repeats, told by
    ``alert_id``, are counted apart)."""

    def __init__(self, port: int, root: str) -> None:
        self.arrived: dict[str, float] = {}  # read_id -> time.monotonic()
        self.repeats = 0
        self._alert_ids: set[str] = set()
        self._lock = threading.Lock()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._client.subscribe(f"{root}/alerts/+", qos=1)
        if not self._subscribed.wait(10):
            raise RuntimeError("the alert subscriber was not subscribed within 10 s")

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        at = time.monotonic()
        alert = json.loads(message.payload)
        with self._lock:
            if alert["alert_id"] in self._alert_ids:
                self.repeats += 1
                return
            self._alert_ids.add(alert["alert_id"])
            self.arrived[alert["read_id"]] = at

    def count(self) -> int:
        with self._lock:
            return len(self.arrived)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def scrape(port: int) -> dict[str, float]:
    """The consumer's counters, summed over their labels."""
    totals: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("ctplhub_anpr_") and "_total" in line:
                name, value = line.split("{")[0].split()[0], float(line.rsplit(" ", 1)[1])
                totals[name] = totals.get(name, 0.0) + value
    return totals


def forget_alerts(home: Home) -> None:
    """A fresh alert state: the benchmark's database is its own."""
    statements = ("DELETE FROM anpr_alerts", "DELETE FROM anpr_reads_seen")
    if home.engine == "sqlite":
        with sqlite3.connect(home.sqlite_file) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    with psycopg.connect(db_url(home.db), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def wait_subscribed(broker_port: int, root: str, metrics_port: int, consumer: Any) -> None:
    """Publish a dropped read (confidence 0) until the consumer counts one: it is then
    subscribed, and nothing published later is lost for want of a subscriber."""
    probe = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    probe.connect("127.0.0.1", broker_port)
    probe.loop_start()
    payload = json.dumps(
        {
            "read_id": "probe",
            "camera_id": "probe",
            "region_code": "000000",
            "plate": "-",
            "seen_at": "-",
            "confidence": 0,
        }
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            if consumer.poll() is not None:
                raise RuntimeError(f"the consumer exited {consumer.returncode}; see {LOGS}")
            try:
                if scrape(metrics_port).get("ctplhub_anpr_reads_total", 0) > 0:
                    return
            except OSError:
                pass  # its metrics are not served yet
            if time.monotonic() > deadline:
                raise RuntimeError("the consumer did not subscribe within 120 s")
            probe.publish(reads_topic(root, "probe"), payload, qos=1)
            time.sleep(0.3)
    finally:
        probe.loop_stop()
        probe.disconnect()
