"""What every fault script shares: a target (one database, its keys, the `ctplhub serve`
processes on it) and a client that posts batches and keeps every answer; the checks
after the fault are ``checks.py``'s.

A fault script builds a :class:`Target`, runs a :class:`Load`, does its harm, recovers,
then calls ``checks.check_all``. A deployment's faults (replica promotion, Redis down) can
reuse all of it with the load balancer's base URL in place of a :class:`Server`
(README.md).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, text

from ctplhub.client import CtplHubClient
from ctplhub.services.demo_fleet import DEMO_INSURERS, iter_fleet_events

CTPLHUB = str(Path(sys.executable).parent / "ctplhub")
BEIJING = timezone(timedelta(hours=8))
EventKey = tuple[str, str, int]


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- the target


@dataclass
class Target:
    """A database URL and the key directory that goes with it; ``work`` holds logs."""

    url: str
    home: Path
    work: Path
    smtp_port: int = 0
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CTPLHUB_DATABASE_URL=self.url,
            CTPLHUB_HOME=str(self.home),
            CTPLHUB_RATE_LIMITS="off",
            CTPLHUB_REDIS_URL="",
            CTPLHUB_SMTP_HOST="127.0.0.1",
            CTPLHUB_SMTP_PORT=str(self.smtp_port or 25),
            CTPLHUB_SERVE_RUNS_JOBS="false",
        )
        return env

    def ctplhub(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [CTPLHUB, *args], env=self.env(), capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"ctplhub {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def prepare(self) -> None:
        """`ctplhub init` and the five demo insurers, each with its API key."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.ctplhub("init")
        for code, name in DEMO_INSURERS:
            added = json.loads(
                self.ctplhub("insurer", "add", code, "--name", name, "--json").stdout
            )
            self.keys[code] = (added["key_id"], added["secret"])

    def scalar(self, sql: str) -> Any:
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def rows(self, sql: str) -> list[Any]:
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)))
        finally:
            engine.dispose()


class Server:
    """One `ctplhub serve` process, started, killed and restarted by the fault."""

    def __init__(self, target: Target, name: str = "api") -> None:
        self.target = target
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = target.work / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [CTPLHUB, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.target.env(), stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ctplhub serve exited {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"ctplhub serve not ready after 60 s; see {self.log}")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)


# --------------------------------------------------------------------------- the load


def fleet_batches(vehicles: int, batch: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The demo fleet's events as per-insurer batches, in the generator's order per
    insurer (a vehicle's events keep their order within its insurer)."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for event in iter_fleet_events(vehicles, now=datetime.now(UTC), seed=13):
        lines = pending.setdefault(event["insurer_code"], [])
        lines.append(event)
        if len(lines) == batch:
            yield event["insurer_code"], pending.pop(event["insurer_code"])
    yield from pending.items()


@dataclass
class Answered:
    """Every event sent, and the accepted ones' leaf indexes, by event key."""

    sent: set[EventKey] = field(default_factory=set)
    accepted: dict[EventKey, list[int]] = field(default_factory=dict)
    unacknowledged_batches: int = 0
    duplicates: int = 0  # lines of resent batches already stored before the fault
    errors: dict[str, int] = field(default_factory=dict)  # "status code" -> times


def key_of(event: dict[str, Any]) -> EventKey:
    return (event["insurer_code"], event["policy_no"], int(event["version"]))


class Load:
    """Posts batches from a thread; a batch without an answer (connection lost, a 5xx)
    is posted again, whole, after ``retry_s``, as a careful insurer's client does: the
    hub's idempotency (one event per key) must make the repeat harmless."""

    def __init__(self, target: Target, base: str, vehicles: int, batch: int) -> None:
        self.target = target
        self.base = base
        self.batches = list(fleet_batches(vehicles, batch))
        self.answered = Answered()
        self.posted = 0  # batches answered
        self.in_flight = threading.Event()
        self.seconds: list[float] = []  # how long each answered batch took
        self.stop = threading.Event()
        self.retry_s = 0.5
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float = 600) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the load did not finish")

    def _run(self) -> None:
        clients = {
            code: CtplHubClient(self.base, key_id, secret, timeout=60)
            for code, (key_id, secret) in self.target.keys.items()
        }
        try:
            for code, events in self.batches:
                while not self.stop.is_set() and not self._post(clients[code], events):
                    self.answered.unacknowledged_batches += 1
                    time.sleep(self.retry_s)
                self.posted += 1
        finally:
            for client in clients.values():
                client.close()

    def _post(self, client: CtplHubClient, events: list[dict[str, Any]]) -> bool:
        body = b"".join(orjson.dumps(e) + b"\n" for e in events)
        self.answered.sent.update(key_of(e) for e in events)
        self.in_flight.set()
        started = time.monotonic()
        try:
            response = client.request(
                "POST", "/v1/policy-events/batch", content=body, content_type="application/x-ndjson"
            )
        except httpx.HTTPError as error:
            self._count(type(error).__name__)
            return False
        finally:
            self.in_flight.clear()
        if response.status_code != 200:
            code = response.json().get("error", {}).get("code", "?")
            self._count(f"{response.status_code} {code}")
            return False
        self.seconds.append(time.monotonic() - started)
        for line in response.json()["results"]:
            event = events[line["line"] - 1]
            if line["status"] == "accepted":
                leaves = self.answered.accepted.setdefault(key_of(event), [])
                leaves.append(line["receipt"]["leaf_index"])
            elif line["status"] == "duplicate":
                self.answered.duplicates += 1
            elif line["status"] == "rejected":
                self._count(f"rejected {line['error']['code']}")
        return True

    def strike_mid_batch(self, harm: Callable[[], None], tries: int = 20) -> bool:
        """Call ``harm`` while a batch is in flight, somewhere in its middle (a random
        fraction of the batches' mean time after it left); true if it still was."""
        for _ in range(tries):
            while not self.in_flight.is_set():
                time.sleep(0.001)
            mean = sum(self.seconds) / len(self.seconds) if self.seconds else 0.2
            time.sleep(random.uniform(0.2, 0.7) * mean)
            if self.in_flight.is_set():
                harm()
                return True
        harm()
        return False

    def _count(self, what: str) -> None:
        self.answered.errors[what] = self.answered.errors.get(what, 0) + 1


# --------------------------------------------------------------------------- set-up


def work_dir(fault: str) -> Path:
    """``bench/out/faults/<fault>``, emptied: logs, SQLite files, keys, caught mail."""
    folder = Path(__file__).resolve().parents[1] / "out" / "faults" / fault
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    return folder
