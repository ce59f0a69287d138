"""``ctplhub worker`` as a real process (issue 9, "Faults that must be survived"):
SIGKILL mid-batch then a restart, two workers at once, SIGTERM, a database that goes away.
On both engines; the receiver is a local HTTP server, the messages webhooks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from ctplhub.domain.instants import BEIJING
from ctplhub.domain.reminders import in_quiet_hours, next_send_instant
from ctplhub.notify import webhook_signing
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import quality_flag_progress, reminders
from helpers import VIN, InsurerAccount, event
from notify_fixtures import DAYTIME, HttpReceiver, TcpProxy, free_port, http_receiver
from outbox_rows import fill_outbox

AT = "2026-12-01T10:00:00+08:00"  # DAYTIME: the worker's clock starts there, not in quiet hours


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


class WorkerProcess:
    def __init__(
        self,
        database_url: str,
        home: Path,
        log: Path,
        *,
        decide: bool = False,
        at: str = AT,
        metrics_port: int | None = None,
        **settings: str,
    ) -> None:
        env = {
            **os.environ,
            "CTPLHUB_DATABASE_URL": database_url,
            "CTPLHUB_HOME": str(home),
            "CTPLHUB_DELIVERY_LEASE_S": "2",
            "CTPLHUB_DELIVERY_CONCURRENCY": "8",
            "CTPLHUB_DELIVERY_BATCH": "20",
            "CTPLHUB_DELIVERY_TIMEOUT_S": "5",
            **{f"CTPLHUB_{k.upper()}": v for k, v in settings.items()},
        }
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ctplhub.cli.worker", "--at", at]
            + ([] if decide else ["--no-decide"])
            + ([] if metrics_port is None else ["--metrics-port", str(metrics_port)]),
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def signal(self, number: int) -> int:
        self.process.send_signal(number)
        code = self.process.wait(timeout=30)
        self._out.close()
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGKILL)
        self._out.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(database_url: str, home: Path, **options: Any) -> WorkerProcess:
        worker = WorkerProcess(
            database_url, home, tmp_path / f"worker{len(started)}.log", **options
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def states(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(reminders.c.id, reminders.c.state)).all())  # type: ignore[arg-type]


def all_sent(engine: Engine, ids: list[int]) -> Callable[[], bool]:
    def check() -> bool:
        now = states(engine)
        return all(now.get(i) == "sent" for i in ids)

    return check


def webhooks(engine: Engine, home: Path, hook: HttpReceiver, count: int) -> list[int]:
    urls = [f"{hook.url}?n={i}" for i in range(count)]
    return fill_outbox(engine, home, urls, channel="webhook", due_at=DAYTIME)


def test_sigkill_mid_batch_then_restart_loses_nothing_and_resends_nothing_recorded(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
) -> None:
    ids = webhooks(engine, home, hook, 160)
    hook.behaviour.delay_s = 0.02
    first = workers(database_url, home)
    wait_for(lambda: len(hook.received) >= 40)
    first.signal(signal.SIGKILL)
    recorded_before_kill = {i for i, s in states(engine).items() if s == "sent"}
    received_before_restart = len(hook.received)
    assert 0 < len(recorded_before_kill) < len(ids)  # killed mid-batch

    workers(database_url, home)  # a restart: the dead worker's claims return after 2 s
    wait_for(all_sent(engine, ids))
    time.sleep(0.5)  # anything sent twice would arrive now

    deliveries = Counter(int(r.headers["X-CTPL-Message-Id"]) for r in hook.received)
    assert set(deliveries) == set(ids)  # nothing lost
    after_restart = Counter(
        int(r.headers["X-CTPL-Message-Id"]) for r in hook.received[received_before_restart:]
    )
    # Nothing whose acknowledgement was recorded is sent again ...
    assert not recorded_before_kill & set(after_restart)
    # ... and only the sends in flight at the kill (at most the concurrency, 8) may go
    # twice, with the same X-CTPL-Message-Id for the receiver to drop.
    twice = [i for i, n in deliveries.items() if n > 1]
    assert len(twice) <= 8 and all(deliveries[i] == 2 for i in twice)


def test_two_workers_share_the_outbox_without_duplicates(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
) -> None:
    ids = webhooks(engine, home, hook, 300)
    hook.behaviour.delay_s = 0.005
    port = free_port()
    counted = workers(database_url, home, metrics_port=port)
    workers(database_url, home)
    wait_for(all_sent(engine, ids))
    time.sleep(0.3)
    deliveries = Counter(r.headers["X-CTPL-Message-Id"] for r in hook.received)
    assert sorted(map(int, deliveries)) == sorted(ids)
    assert set(deliveries.values()) == {1}
    with engine.connect() as conn:
        by = {w for (w,) in conn.execute(select(reminders.c.claimed_by))}
    assert by == {None}  # every lease cleared by mark_sent
    # The first worker's own counters, on its --metrics-port: its share of the sends (the
    # other worker may have taken them all), as its log lines tell it.
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "# TYPE ctplhub_reminders_sent_total counter" in metrics
    sample = 'ctplhub_reminders_sent_total{channel="webhook"} '
    lines = [m for m in metrics.splitlines() if m.startswith(sample)]
    by_metrics = float(lines[0].split()[-1]) if lines else 0.0
    assert counted.signal(signal.SIGTERM) == 0
    passes = [json.loads(x) for x in counted.log.read_text().splitlines() if "delivery_pass" in x]
    assert by_metrics == sum(p["sent"] for p in passes)


def test_sigterm_finishes_in_flight_sends_and_gives_back_the_rest(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
) -> None:
    ids = webhooks(engine, home, hook, 60)
    hook.behaviour.delay_s = 0.3
    worker = workers(database_url, home, delivery_concurrency="4")
    wait_for(lambda: len(hook.received) >= 8)
    assert worker.signal(signal.SIGTERM) == 0
    now = states(engine)
    acknowledged = set(map(int, hook.acknowledged_ids()))
    assert {i for i, s in now.items() if s == "sent"} == acknowledged  # in flight: recorded
    with engine.connect() as conn:
        rest = conn.execute(
            select(reminders.c.claimed_until, reminders.c.attempts).where(
                reminders.c.state == "pending"
            )
        ).all()
    assert len(rest) == len(ids) - len(acknowledged) > 0
    assert {tuple(r) for r in rest} == {(None, 0)}  # given back, the try not counted
    log = worker.log.read_text()
    assert "worker_stopped" in log
    assert "/hook" not in log  # no address (a webhook URL is personal data) in the logs


def test_the_worker_waits_for_the_database_and_resumes(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
) -> None:
    if database_url.startswith("sqlite"):
        _sqlite_locked_then_free(database_url, home, engine, hook, workers)
        return
    url = make_engine(database_url).url
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    through_proxy = database_url.replace(f":{url.port or 5432}/", f":{proxy.port}/")
    assert through_proxy != database_url
    first = webhooks(engine, home, hook, 20)
    worker = workers(through_proxy, home)  # nothing listens there yet
    # Until it has tried and said so (a fixed sleep raced a slow start on a loaded machine).
    wait_for(lambda: "database_unavailable" in worker.log.read_text(), timeout=90)
    assert hook.received == [] and worker.process.poll() is None
    proxy.start()
    try:
        wait_for(all_sent(engine, first))
        proxy.stop()  # the database goes away under a running worker ...
        later = webhooks(engine, home, hook, 20)  # (written straight, not through the proxy)
        time.sleep(3)
        assert worker.process.poll() is None
        assert not any(states(engine)[i] == "sent" for i in later)
        proxy.start()  # ... and comes back
        wait_for(all_sent(engine, later))
    finally:
        proxy.stop()
    deliveries = Counter(r.headers["X-CTPL-Message-Id"] for r in hook.received)
    assert sorted(map(int, deliveries)) == sorted(first + later)
    assert set(deliveries.values()) == {1}
    assert worker.signal(signal.SIGTERM) == 0  # (and its buffered log lines are written)
    log = worker.log.read_text()
    assert "database_unavailable" in log and "database_available" in log
    assert "/hook" not in log


def _sqlite_locked_then_free(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
) -> None:
    """SQLite has no server to lose: it is unavailable while another process holds its
    write lock. The worker waits (busy timeout, then back-off) and resumes."""
    first = webhooks(engine, home, hook, 10)
    worker = workers(database_url, home)
    wait_for(all_sent(engine, first))
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        time.sleep(3)
        assert worker.process.poll() is None
        conn.exec_driver_sql("COMMIT")
    later = webhooks(engine, home, hook, 10)
    wait_for(all_sent(engine, later))
    assert sorted(int(i) for i in hook.acknowledged_ids()) == sorted(first + later)


def test_the_worker_decides_and_delivers_a_signed_reminder_end_to_end(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
    picc: InsurerAccount,
    client: TestClient,
) -> None:
    """An insurer reports a policy ending in 20 days, the owner subscribes a webhook
    through the API, and the worker (deciding every minute) sends the 30-day reminder.
    The worker's clock starts after the subscription, outside quiet hours."""
    now = datetime.now(UTC)
    start = next_send_instant(now) if in_quiet_hours(now) else now + timedelta(seconds=1)
    end = datetime.combine(
        (start + timedelta(days=20)).astimezone(BEIJING).date(), datetime.min.time(), BEIJING
    )
    picc.api.report_event(
        event(
            occurred_at=(end - timedelta(days=366)).isoformat(),
            coverage_start=(end - timedelta(days=365)).isoformat(),
            coverage_end=end.isoformat(),
        )
    )
    answer = client.post(
        "/v1/subscriptions",
        json={
            "plate": "苏E12345",
            "vin_last6": VIN[-6:],
            "channel": "webhook",
            "address": hook.url,
        },
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    worker = workers(database_url, home, decide=True, at=start.isoformat())
    wait_for(lambda: len(hook.acknowledged_ids()) == 1)
    (received,) = hook.received
    body = received.json()
    assert body["kind"] == "before_30d" and body["vehicle"]["plate"] == "苏E·12345"
    assert str(made["subscription_id"]) == body["subscription_id"]
    assert webhook_signing.verify(
        made["webhook_secret"],
        timestamp=received.headers["X-CTPL-Webhook-Timestamp"],
        message_id=received.headers["X-CTPL-Message-Id"],
        body=received.body,
        header=received.headers["X-CTPL-Webhook-Signature"],
        now_s=time.time(),
    )
    assert made["unsubscribe_token"] in body["unsubscribe_url"]
    assert worker.signal(signal.SIGTERM) == 0
    log = worker.log.read_text()
    assert "reminders_decided" in log
    # The same minute's pass made the data-quality flags of what was reported (none here).
    passes = [
        line
        for line in map(json.loads, filter(None, log.splitlines()))
        if line.get("event") == "quality_flags"
    ]
    assert [(p["examined"], p["flagged"]) for p in passes] == [(1, 0)]
    with engine.connect() as conn:
        assert conn.execute(select(quality_flag_progress.c.next_leaf)).scalar() == 1


def test_the_worker_escalates_overdue_disputes_and_tells_the_owner(
    database_url: str,
    home: Path,
    engine: Engine,
    hook: HttpReceiver,
    workers: Callable[..., WorkerProcess],
    picc: InsurerAccount,
    client: TestClient,
    clock: Any,
) -> None:
    """A dispute filed ten days before the worker's clock is overdue: the worker's
    minute pass escalates it (DESIGN §10), and the owner's webhook gets both notices."""
    now = datetime.now(UTC)
    start = next_send_instant(now) if in_quiet_hours(now) else now + timedelta(seconds=1)
    clock.now = start - timedelta(days=10)
    picc.api.report_event(event())
    owner = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
    subscribed = client.post(
        "/v1/subscriptions", json={**owner, "channel": "webhook", "address": hook.url}
    )
    assert subscribed.status_code == 201, subscribed.text
    filed = client.post("/v1/disputes", json={**owner, "kind": "other", "message": "查不到"})
    assert filed.status_code == 201, filed.text
    worker = workers(database_url, home, decide=True, at=start.isoformat())
    wait_for(lambda: len(hook.acknowledged_ids()) == 2)
    kinds = sorted(json.loads(r.body)["kind"] for r in hook.received)
    assert kinds == ["dispute_escalated", "dispute_opened"]
    status = client.post(
        f"/v1/disputes/{filed.json()['dispute_id']}/status", json={"token": filed.json()["token"]}
    )
    assert status.json()["status"] == "escalated"
    assert worker.signal(signal.SIGTERM) == 0
