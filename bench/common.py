"""Shared helpers for the benchmarks: paths, databases on both engines and the key
directories that go with them, `ctplhub` commands, demo-fleet NDJSON files, and the two
servers every HTTP figure compares: `ctplhub serve` itself, and the plain FastAPI app of
``plain_app.py`` under the same uvicorn settings. Each is ready once it answers.

Measuring (CPU, memory, `wrk`) is in ``measure.py``; loading a fleet through
`ctplhub import` in ``loading.py``. Nothing here is imported by the application or the
test suite. Everything the benchmarks create lives under ``bench/out/`` (keys, SQLite
files, NDJSON files, logs, results) and in PostgreSQL databases whose names start with
``ctplhub_bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from ctplhub.services.demo_fleet import DEMO_INSURERS, MAX_VEHICLES, iter_fleet_events
from ctplhub.store.schema import ACCESS_LOG_SCHEMA, access_log_file

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
DATA = OUT / "data"
LOGS = OUT / "logs"
PYTHON = sys.executable
CTPLHUB = str(Path(PYTHON).parent / "ctplhub")
PG_BASE = os.environ.get("CTPLHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
SAMPLE_VEHICLES = 20_000  # (plate, vin_last6) pairs kept per loaded fleet, spread evenly
INSURER_CODES = tuple(code for code, _ in DEMO_INSURERS)


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --------------------------------------------------------------------------- databases


def db_url(name: str) -> str:
    return f"{PG_BASE}/{name}"


def admin_connection() -> psycopg.Connection[Any]:
    return psycopg.connect(db_url("postgres"), autocommit=True)


def recreate_database(name: str) -> None:
    if not re.fullmatch(r"ctplhub_bench\w*", name):
        raise ValueError(f"refusing to drop {name!r}: bench databases start with ctplhub_bench")
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def count_rows(home: Home, table: str) -> int | None:
    """Rows in ``table`` of the home's database; ``None`` when either does not exist."""
    if home.engine == "sqlite":
        if not home.sqlite_file.exists():
            return None
        try:
            with closing(sqlite3.connect(home.sqlite_file)) as conn:
                side = access_log_file(home.sqlite_file)
                if side.exists():  # the access log's own file (migration 0005)
                    conn.execute(f"ATTACH DATABASE ? AS {ACCESS_LOG_SCHEMA}", (str(side),))
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                return int(row[0]) if row else None
        except sqlite3.Error:
            return None
    try:
        with psycopg.connect(db_url(home.db), autocommit=True) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            return int(row[0]) if row else None
    except psycopg.Error:
        return None


def postgres_version() -> str:
    with admin_connection() as conn:
        row = conn.execute("SHOW server_version").fetchone()
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'synchronous_commit', 'fsync', 'max_wal_size')"
            ).fetchall()
        )
    shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return f"PostgreSQL {row[0] if row else '?'} ({shown})"


def code_fingerprint() -> dict[str, Any]:
    """Which application code was measured (src/ changes under active development):
    a hash of every source file and the newest modification time among them."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    return {
        "src_sha256": digest.hexdigest()[:16],
        "src_newest_mtime": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds"),
    }


def machine() -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as info:
        mem_kb = int(info.readline().split()[1])
    return {
        "code": code_fingerprint(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgres": postgres_version(),
    }


# --------------------------------------------------------------------------- ctplhub


ENGINES = ("postgresql", "sqlite")


@dataclass
class Home:
    """One database and the key directory that goes with it (keys must match the data):
    a PostgreSQL database named ``db``, or the SQLite file ``bench/out/sqlite/<db>.db``
    (and its access log's, ``<db>.access-log.db``)."""

    db: str
    path: Path
    engine: str = "postgresql"

    @classmethod
    def for_db(cls, db: str, engine: str = "postgresql") -> Home:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}")
        folder = db if engine == "postgresql" else f"sqlite-{db}"
        return cls(db, OUT / "home" / folder, engine)

    @property
    def sqlite_file(self) -> Path:
        return OUT / "sqlite" / f"{self.db}.db"

    @property
    def url(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{self.sqlite_file}"
        return db_url(self.db)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CTPLHUB_DATABASE_URL=self.url,
            CTPLHUB_HOME=str(self.path),
            CTPLHUB_RATE_LIMITS="off",
        )
        return env

    @property
    def state_file(self) -> Path:
        return self.path / "bench-state.json"

    def read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, ensure_ascii=False))


def ctplhub(home: Home, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [CTPLHUB, *args], env=home.env(), capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"ctplhub {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def fresh_home(home: Home) -> dict[str, tuple[str, str]]:
    """A new empty database, new keys, `ctplhub init`, the five demo insurers; returns
    each insurer's API key as ``{code: (key_id, secret)}``."""
    if home.engine == "sqlite":
        home.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        for database in (home.sqlite_file, access_log_file(home.sqlite_file)):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
    else:
        recreate_database(home.db)
    shutil.rmtree(home.path, ignore_errors=True)
    home.path.mkdir(parents=True)
    ctplhub(home, "init")
    keys = {}
    for code, name in DEMO_INSURERS:
        added = json.loads(ctplhub(home, "insurer", "add", code, "--name", name, "--json").stdout)
        keys[code] = (added["key_id"], added["secret"])
    return keys


def police_token(home: Home) -> str:
    name = f"bench-police-{int(time.time() * 1000)}"
    proc = ctplhub(home, "user", "add", name, "--role", "police", "--json")
    token: str = json.loads(proc.stdout)["token"]
    return token


# --------------------------------------------------------------------------- fleet files


@dataclass
class FleetFiles:
    """One NDJSON file per insurer, written from the demo fleet generator."""

    now: str
    files: dict[str, str]  # insurer code -> path
    lines: dict[str, int]  # insurer code -> events in that file
    events: int
    vehicles: int
    policies: int
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (plate, vin_last6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "files": self.files,
            "lines": self.lines,
            "events": self.events,
            "vehicles": self.vehicles,
            "policies": self.policies,
            "pairs": self.pairs,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FleetFiles:
        raw = dict(raw)
        raw["pairs"] = [tuple(p) for p in raw.get("pairs", [])]
        return cls(**raw)

    def exist(self) -> bool:
        return all(Path(p).is_file() for p in self.files.values())


def write_fleet_files(
    directory: Path,
    *,
    events: int | None = None,
    policies: int | None = None,
    now: datetime | None = None,
) -> FleetFiles:
    """Stream the demo fleet into per-insurer NDJSON files.

    With ``events``: stop after exactly that many events (a vehicle's history may be cut
    short, which is still a valid history). With ``policies``: stop at the first vehicle
    boundary where the fleet holds that many distinct policies. Also keeps the current
    (plate, vin_last6) of up to ``SAMPLE_VEHICLES`` vehicles spread over the fleet: the
    plate and VIN of each vehicle's latest event, i.e. what an owner would type.
    """
    if (events is None) == (policies is None):
        raise ValueError("give exactly one of events or policies")
    now = now or datetime.now(UTC)
    expected_vehicles = (events / 2.0) if events is not None else (policies or 0) / 1.87
    stride = max(1, int(expected_vehicles // SAMPLE_VEHICLES))
    directory.mkdir(parents=True, exist_ok=True)
    paths = {code: directory / f"{code}.ndjson" for code in INSURER_CODES}
    handles = {code: path.open("wb", buffering=1 << 20) for code, path in paths.items()}
    lines = dict.fromkeys(INSURER_CODES, 0)
    pairs: list[tuple[str, str]] = []
    total = vehicles = policy_count = 0
    vin: str | None = None
    latest: dict[str, Any] | None = None
    vehicle_policies: set[str] = set()

    def close_vehicle() -> None:
        nonlocal vehicles, policy_count
        if latest is None:
            return
        if vehicles % stride == 0 and len(pairs) < SAMPLE_VEHICLES:
            pairs.append((latest["plate"], latest["vin"][-6:]))
        vehicles += 1
        policy_count += len(vehicle_policies)
        vehicle_policies.clear()

    try:
        for event in iter_fleet_events(MAX_VEHICLES, now=now):
            if event["vin"] != vin:
                close_vehicle()
                if policies is not None and policy_count >= policies:
                    latest = None
                    break
                vin = event["vin"]
            code = event["insurer_code"]
            handles[code].write(orjson.dumps(event) + b"\n")
            lines[code] += 1
            total += 1
            latest = event
            vehicle_policies.add(f"{code}|{event['policy_no']}")
            if events is not None and total >= events:
                break
        close_vehicle()
    finally:
        for handle in handles.values():
            handle.close()
    return FleetFiles(
        now=now.isoformat(),
        files={code: str(path) for code, path in paths.items() if lines[code]},
        lines={code: n for code, n in lines.items() if n},
        events=total,
        vehicles=vehicles,
        policies=policy_count,
        pairs=pairs,
    )


def spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items taken evenly over ``items`` (all of them when there are fewer)."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    base: str
    pid: int


PLAIN_APP = BENCH / "plain_app.py"


_RUN_CLI = "import sys; from ctplhub.cli.main import main; sys.exit(main())"


def ctplhub_serve(home: Home, port: int) -> list[str]:
    """`ctplhub serve`, exactly as an operator starts it: one process."""
    return [CTPLHUB, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def plain_serve(port: int) -> list[str]:
    """The plain FastAPI app under the same ``uvicorn.run`` settings as `ctplhub serve`."""
    return [PYTHON, str(PLAIN_APP), "--port", str(port)]


@contextmanager
def server(
    home: Home | None,
    *,
    name: str = "server",
    ready_path: str = "/readyz",
    code: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """`ctplhub serve` on the home's database (``home``) or the plain app (``None``);
    yields once ``ready_path`` answers. Logs (JSON lines) go to ``bench/out/logs``.
    ``code`` is ``[python, src folder]`` to serve another version of the code (a
    baseline exported from git); ``env_extra`` adds settings (``CTPLHUB_*``)."""
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{name}.log"
    argv = ctplhub_serve(home, port) if home is not None else plain_serve(port)
    env = home.env() if home is not None else dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = code[1]
        argv = [code[0], "-c", _RUN_CLI, *argv[1:]]
    env.update(env_extra or {})
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(argv, env=env, stdout=log_file, stderr=log_file)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited {proc.returncode}; see {log_path}")
                try:
                    if httpx.get(f"{base}{ready_path}", timeout=2).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after 120s; see {log_path}")
                time.sleep(0.2)
            yield RunningServer(base, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_results(name: str, payload: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2))
    return path


def add_query_db_arguments(parser: argparse.ArgumentParser) -> None:
    """The 1M-policy databases that the query and verify benchmarks read."""
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines measured"
    )
    parser.add_argument("--db", default="ctplhub_bench", help="database name on each engine")
    parser.add_argument(
        "--policies", type=int, default=1_000_000, help="policies the database must hold"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database when it already holds enough policies",
    )


def add_wait_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-quiet", type=float, default=0, help="wait up to S seconds for an idle machine"
    )


def bench_main(
    name: str,
    doc: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], dict[str, Any]],
    summary_lines: Callable[[dict[str, Any]], list[str]],
    argv: list[str] | None = None,
) -> int:
    """Parse arguments, run one benchmark, write ``bench/out/<name>.json``, print a summary."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_arguments(parser)
    result = run(parser.parse_args(argv))
    result["machine"] = machine()
    path = write_results(name, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print("\n".join(summary_lines(result)))
    log(f"written {path}")
    return 0
