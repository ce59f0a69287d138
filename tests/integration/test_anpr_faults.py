"""``ctplhub anpr run`` as a real process through the faults of issue 14: stopped and
restarted, killed with SIGKILL mid-stream and restarted, the database away for a while,
the broker restarted. Afterwards every read is decided, none lost, no alert twice.
On both engines, with a real Mosquitto (a broker of our own for its restart)."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from test_anpr import COVERED, load_vehicles

from anpr_fixtures import (
    ConsumerProcess,
    Mosquitto,
    alert_listener,
    mqtt_port,
    publish,
    read,
    topic_root,
    wait_until,
)
from ctplhub.bootstrap import Container
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import anpr_alerts, anpr_reads_seen
from helpers import Clock
from notify_fixtures import TcpProxy

__all__ = ["mqtt_port", "topic_root"]  # fixtures


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[Callable[..., ConsumerProcess]]:
    started: list[ConsumerProcess] = []

    def start(database_url: str, home: Path, **options: Any) -> ConsumerProcess:
        process = ConsumerProcess(database_url, home, tmp_path / "consumer.log", **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def stream(prefix: str, count: int, every: int = 5) -> tuple[list[bytes], int]:
    """``count`` reads: the covered car mostly, every ``every``-th a plate never reported
    (each its own, so each raises exactly one alert); and how many alerts are due."""
    reads = []
    for n in range(count):
        uncovered = n % every == 0
        plate = f"苏E·{20000 + n:05d}" if uncovered else COVERED
        reads.append(read(f"{prefix}-{n:05d}", plate))
    return reads, (count + every - 1) // every


def alert_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(anpr_alerts)).scalar_one())


def kept(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(anpr_alerts)))


def test_stopped_and_killed_consumers_lose_no_read_and_duplicate_no_alert(
    container: Container,
    clock: Clock,
    database_url: str,
    home: Path,
    engine: Engine,
    consumers: Callable[..., ConsumerProcess],
    mqtt_port: int,
    topic_root: str,
) -> None:
    load_vehicles(container, clock)
    client_id = f"faults-{uuid.uuid4().hex[:10]}"

    def start() -> ConsumerProcess:
        return consumers(database_url, home, port=mqtt_port, root=topic_root, client_id=client_id)

    reads, due = stream("k", 400)
    with alert_listener(mqtt_port, topic_root) as listener:
        first = start()
        first.wait_connected()
        publish(mqtt_port, topic_root, reads[:100])
        assert first.signal(signal.SIGTERM) == 0  # a clean stop ...
        publish(mqtt_port, topic_root, reads[100:200])  # ... reads queued meanwhile ...
        second = start()
        second.wait_connected(times=2)  # ... and decided after the restart
        sender = threading.Thread(target=publish, args=(mqtt_port, topic_root, reads[200:300]))
        sender.start()
        time.sleep(0.05)
        second.signal(signal.SIGKILL)  # killed mid-stream
        sender.join()
        publish(mqtt_port, topic_root, reads[300:])
        third = start()
        third.wait_connected(times=3)
        wait_until(lambda: alert_count(engine) >= due, timeout=60)
        listener.wait_for(due, timeout=30)
        wait_until(lambda: all(r.published_at for r in kept(engine)), timeout=30)
        time.sleep(0.5)  # nothing more comes
    rows = kept(engine)
    assert len(rows) == due
    assert sorted(r.read_id for r in rows) == sorted(
        f"k-{n:05d}" for n in range(0, 400, 5)
    )  # every uncovered read decided, once
    published = {a["alert_id"] for a in listener.alerts()}
    assert published == {r.alert_id for r in rows}  # each alert published (maybe twice)
    with engine.connect() as conn:
        seen = conn.execute(select(func.count()).select_from(anpr_reads_seen)).scalar_one()
    assert seen == due  # covered reads left nothing


def test_reads_wait_while_the_database_is_away_then_are_decided(
    container: Container,
    clock: Clock,
    database_url: str,
    home: Path,
    engine: Engine,
    consumers: Callable[..., ConsumerProcess],
    mqtt_port: int,
    topic_root: str,
) -> None:
    load_vehicles(container, clock)
    reads, due = stream("db", 60)
    client_id = f"db-{uuid.uuid4().hex[:10]}"
    if database_url.startswith("sqlite"):
        consumer = consumers(
            database_url, home, port=mqtt_port, root=topic_root, client_id=client_id
        )
        consumer.wait_connected()
        path = make_url(database_url).database
        assert path
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # no one else writes until we let go
        try:
            publish(mqtt_port, topic_root, reads)
            time.sleep(2)
            assert alert_count(engine) == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    else:
        url = make_url(database_url)
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        through = database_url.replace(f":{url.port or 5432}/", f":{proxy.port}/")
        assert through != database_url
        proxy.start()
        consumer = consumers(through, home, port=mqtt_port, root=topic_root, client_id=client_id)
        consumer.wait_connected()
        proxy.stop()  # the database goes away under a running consumer ...
        try:
            publish(mqtt_port, topic_root, reads)
            time.sleep(2)
            assert alert_count(engine) == 0
        finally:
            proxy.start()  # ... and comes back
    wait_until(lambda: alert_count(engine) == due, timeout=60)
    wait_until(lambda: all(r.published_at for r in kept(engine)), timeout=30)
    assert consumer.process.poll() is None
    consumer.stop()  # while the database answers: the access log's entries are written
    if not database_url.startswith("sqlite"):
        proxy.stop()


def test_a_broker_restart_mid_stream_loses_no_read(
    container: Container,
    clock: Clock,
    database_url: str,
    home: Path,
    engine: Engine,
    consumers: Callable[..., ConsumerProcess],
    tmp_path: Path,
    topic_root: str,
) -> None:
    load_vehicles(container, clock)
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        consumer = consumers(
            database_url,
            home,
            port=broker.port,
            root=topic_root,
            client_id=f"broker-{uuid.uuid4().hex[:10]}",
        )
        consumer.wait_connected()
        reads, due = stream("b", 200)
        publish(broker.port, topic_root, reads[:100])
        broker.stop()  # mid-stream: some reads may be in flight, unacknowledged
        broker.start()
        consumer.wait_connected(times=2, timeout=60)
        publish(broker.port, topic_root, reads[100:])
        wait_until(lambda: alert_count(engine) == due, timeout=60)
        wait_until(lambda: all(r.published_at for r in kept(engine)), timeout=30)
        assert len({r.read_id for r in kept(engine)}) == due
    finally:
        broker.stop()
