"""Roadside camera tests' helpers (DESIGN §12): a real Mosquitto (the system's on
127.0.0.1:1883, or one of our own on a free port), camera reads, an alerts listener, the
consumer in a thread of the test process or as a real ``ctplhub anpr run`` process.

Every test uses its own topic root and client ids, so tests running side by side on one
broker never see each other's reads or alerts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ctplhub.anpr.broker import Broker
from ctplhub.anpr.consumer import Consumer
from ctplhub.bootstrap import Container
from ctplhub.cli.anpr import UNAVAILABLE
from ctplhub.domain.instants import format_instant
from notify_fixtures import free_port

SYSTEM_BROKER = ("127.0.0.1", 1883)


def broker_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def mqtt_port() -> int:
    if not broker_answers(*SYSTEM_BROKER):
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    return SYSTEM_BROKER[1]


@pytest.fixture
def topic_root() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def read(
    read_id: str,
    plate: str,
    *,
    seen_at: datetime | None = None,
    region: str = "320500",
    camera: str = "cam-1",
    confidence: float = 0.97,
) -> bytes:
    return json.dumps(
        {
            "read_id": read_id,
            "camera_id": camera,
            "region_code": region,
            "plate": plate,
            "seen_at": format_instant(seen_at or datetime.now(UTC)),
            "confidence": confidence,
        },
        ensure_ascii=False,
    ).encode()


def publish(port: int, root: str, payloads: list[bytes], camera: str = "cam-1") -> None:
    """Publish camera reads, QoS 1, each acknowledged by the broker before returning."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    # The network loop is run here, not on paho's thread: paho 2.2's ``loop_stop`` after
    # ``disconnect`` raced with that thread's own exit (``NoneType`` has no ``join``).
    try:
        infos = [client.publish(f"{root}/anpr/{camera}", p, qos=1) for p in payloads]
        deadline = time.monotonic() + 10
        while not all(info.is_published() for info in infos):
            assert time.monotonic() < deadline, "the broker did not acknowledge every read"
            client.loop(timeout=0.05)
    finally:
        client.disconnect()


@dataclass
class AlertListener:
    """Subscribed to ``{root}/alerts/+`` (QoS 1) for the test's life."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len({a["alert_id"] for a in self.alerts()}) >= count:
                return self.alerts()
            time.sleep(0.05)
        raise AssertionError(f"{len(self.alerts())} alerts published, {count} awaited")


@contextmanager
def alert_listener(port: int, root: str) -> Iterator[AlertListener]:
    listener = AlertListener()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        with listener.lock:
            listener.messages.append(json.loads(message.payload))

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(f"{root}/alerts/+", qos=1)
    assert subscribed.wait(5)
    try:
        yield listener
    finally:
        # The thread first, then the goodbye (paho sends it itself with no thread): the
        # other order races with the thread's own exit in paho 2.2 (see ``publish``).
        client.loop_stop()
        client.disconnect()


@contextmanager
def consumer_thread(
    container: Container, port: int, root: str, *, client_id: str | None = None
) -> Iterator[Consumer]:
    """The consumer in a thread of its own loop, on ``container`` (as ``anpr run`` does)."""
    assert container.anpr is not None
    consumer = Consumer(
        container.anpr,
        Broker("127.0.0.1", port, tls=False),
        client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
        topic_root=root,
        min_confidence=0.9,
        clock=container.anpr._clock,
        unavailable=UNAVAILABLE,
        sweep_s=0.5,
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failed: list[BaseException] = []

    async def main() -> None:
        await container.reader.open()
        await container.access_log.start()
        try:
            await consumer.run(stop)
        finally:
            await container.access_log.stop()
            await container.reader.close()

    def target() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not consumer.connected.is_set() and time.monotonic() < deadline and not failed:
        time.sleep(0.02)
    assert consumer.connected.is_set(), failed
    try:
        yield consumer
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
        loop.close()
        assert not failed, failed


class ConsumerProcess:
    """``python -m ctplhub.cli.anpr run`` against a test database and broker."""

    def __init__(
        self, database_url: str, home: Path, log: Path, *, port: int, root: str, client_id: str
    ) -> None:
        env = {
            **os.environ,
            "CTPLHUB_DATABASE_URL": database_url,
            "CTPLHUB_HOME": str(home),
            "CTPLHUB_MQTT_URL": f"mqtt://127.0.0.1:{port}",
            "CTPLHUB_MQTT_TOPIC_ROOT": root,
            "CTPLHUB_ANPR_CLIENT_ID": client_id,
            "CTPLHUB_ANPR_BATCH_MAX": "50",
        }
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ctplhub.cli.anpr", "run"],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def wait_connected(self, times: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count("anpr_connected") >= times:
                return
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            time.sleep(0.05)
        raise AssertionError(self.log.read_text(errors="replace"))

    def signal(self, number: int) -> int:
        self.process.send_signal(number)
        return self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        self._out.close()


class Mosquitto:
    """A broker of our own on a free port, persistent (a restart keeps its sessions and
    queued messages): the system's broker is never stopped by a test."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("mosquitto") is None:
            pytest.skip("mosquitto is not installed")
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
            # Started as root, mosquitto would become the user "mosquitto", who cannot
            # write its database in our temporary folder.
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not broker_answers("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
