"""The `make deploy-local` deployment as the load and soak benchmarks see it (issue 13,
items 3-4): bringing it up with N API processes, loading a fleet into it with `ctplhub
import` as an operator would, its processes' CPU and memory from /proc, and nginx's
access log counted per kind of request.

Everything is the deployment's own: ``var/deploy`` of this tree (``CTPLHUB_DEPLOY_DIR``
moves it), its ports (nginx 8080, PostgreSQL 5440/5441, PgBouncer 6432, Redis 6380), its
generated secrets and the demo's keys (``home/demo.json``). Nothing here touches the
shared PostgreSQL on 5432.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from common import CTPLHUB, INSURER_CODES, ROOT, log, spread

from ctplhub.services.demo_fleet import iter_fleet_events

STATE = Path(os.environ.get("CTPLHUB_DEPLOY_DIR", ROOT / "var" / "deploy"))
RUN = STATE / "run"
LOG = STATE / "log"
NGINX_PORT = int(os.environ.get("NGINX_PORT", "8080"))
BASE = f"http://127.0.0.1:{NGINX_PORT}"
PRIMARY_PORT = int(os.environ.get("PRIMARY_PORT", "5440"))
LOAD_STATE = STATE / "bench-load-state.json"
SAMPLE_PAIRS = 20_000
_TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- up / down


def deploy_up(api_procs: int) -> None:
    """``deploy/up.sh`` with ``CTPLHUB_DEPLOY_API_PROCS``: idempotent; a lower count than
    what runs stops the extra processes once nginx no longer sends them anything."""
    env = dict(os.environ, CTPLHUB=CTPLHUB, CTPLHUB_DEPLOY_API_PROCS=str(api_procs))
    env.pop("API_PORTS", None)
    done = subprocess.run(
        [str(ROOT / "deploy" / "up.sh")], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/up.sh exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    running = api_pids()
    if len(running) != api_procs:
        raise RuntimeError(f"{len(running)} API processes run, {api_procs} asked for")


def app_env() -> dict[str, str]:
    """The application's environment (``var/deploy/app.env``) over ours."""
    env = dict(os.environ)
    for line in (STATE / "app.env").read_text().splitlines():
        name, _, value = line.partition("=")
        if name:
            env[name] = value
    return env


def direct_env() -> dict[str, str]:
    """As ``app_env``, straight to the primary (as deploy/up.sh runs `ctplhub init`):
    an import is one long session, like a migration."""
    env = app_env()
    password = secrets()["DB_PASSWORD"]
    env["CTPLHUB_DATABASE_URL"] = (
        f"postgresql://ctplhub:{password}@127.0.0.1:{PRIMARY_PORT}/ctplhub"
    )
    return env


def secrets() -> dict[str, str]:
    pairs = (line.partition("=") for line in (STATE / "secrets.env").read_text().splitlines())
    return {name: value for name, _, value in pairs if name}


def demo() -> dict[str, Any]:
    """The demo's secrets: the insurers' keys and the police token."""
    loaded: dict[str, Any] = json.loads((STATE / "home" / "demo.json").read_text())
    return loaded


def insurer_keys() -> dict[str, tuple[str, str]]:
    return {code: (k["key_id"], k["secret"]) for code, k in demo()["insurers"].items()}


def run_ctplhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([CTPLHUB, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ctplhub {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


# --------------------------------------------------------------------------- the fleet


def demo_vehicles() -> int:
    """How many vehicles `ctplhub demo` loaded (the fleet's first indexes)."""
    return int(demo().get("vehicles") or os.environ.get("VEHICLES", "2000"))


def load_state() -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(LOAD_STATE.read_text())
    except (OSError, ValueError):
        state = {}
    state.setdefault("first_vehicle", demo_vehicles())
    state.setdefault("vehicles", 0)
    state.setdefault("pairs", [])
    state.setdefault("imports", [])
    return state


def ensure_fleet(vehicles: int) -> dict[str, Any]:
    """At least ``vehicles`` vehicles of the demo fleet generator beyond the demo's own,
    imported with `ctplhub import` (one NDJSON file per insurer, as an operator loads an
    insurer's book). A second call imports only the missing ones (vehicle indexes after
    those already loaded), so a fleet grows from 200,000 to 1,000,000 without reloading."""
    state = load_state()
    have = state["vehicles"]
    if have >= vehicles:
        log(f"the deployment already holds {have:,} imported vehicles (>= {vehicles:,})")
        return state
    first = state["first_vehicle"] + have
    last = state["first_vehicle"] + vehicles
    log(f"writing vehicles {first:,}..{last - 1:,} of the demo fleet as NDJSON ...")
    folder = STATE / "bench-import"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {code: folder / f"{code}.ndjson" for code in INSURER_CODES}
    handles = {code: path.open("wb", buffering=1 << 20) for code, path in paths.items()}
    lines: Counter[str] = Counter()
    pairs: list[tuple[str, str]] = []
    latest: dict[str, Any] | None = None
    index = -1
    vin = None
    stride = max(1, (last - first) // SAMPLE_PAIRS)  # keep ~SAMPLE_PAIRS (plate, vin_last6)
    # The demo loaded iter_fleet_events(demo_vehicles); a vehicle's events depend only on
    # its index and the seed, so indexes past the demo's are vehicles it does not hold.
    try:
        for event in iter_fleet_events(last, now=datetime.now(UTC)):
            if event["vin"] != vin:
                if latest is not None and index >= first and index % stride == 0:
                    pairs.append((latest["plate"], latest["vin"][-6:]))
                vin = event["vin"]
                index += 1
            latest = event
            if index < first:
                continue
            handles[event["insurer_code"]].write(orjson.dumps(event) + b"\n")
            lines[event["insurer_code"]] += 1
        if latest is not None and index >= first:
            pairs.append((latest["plate"], latest["vin"][-6:]))
    finally:
        for handle in handles.values():
            handle.close()
    env = direct_env()
    started = time.perf_counter()
    imported = []
    for code, path in paths.items():
        if not lines[code]:
            continue
        t0 = time.perf_counter()
        done = run_ctplhub(env, "import", str(path), "--insurer", code, "--json")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        took = time.perf_counter() - t0
        log(
            f"  import {code}: {lines[code]:,} lines in {took:.1f}s, accepted "
            f"{summary.get('accepted', 0):,}, duplicate {summary.get('duplicate', 0):,}, "
            f"rejected {summary.get('rejected', 0):,}"
        )
        imported.append(
            {
                "insurer": code,
                "lines": lines[code],
                "wall_s": round(took, 1),
                **{k: summary.get(k) for k in ("accepted", "duplicate", "rejected")},
            }
        )
        path.unlink()
    wall = time.perf_counter() - started
    state["vehicles"] = vehicles
    state["pairs"] = spread(state["pairs"] + pairs, SAMPLE_PAIRS)
    state["imports"].append(
        {
            "vehicles": [first, last],
            "events": sum(lines.values()),
            "wall_s": round(wall, 1),
            "files": imported,
        }
    )
    LOAD_STATE.write_text(json.dumps(state, ensure_ascii=False))
    log(f"imported {sum(lines.values()):,} events of {last - first:,} vehicles in {wall:.0f}s")
    return state


def ingest_templates(count: int, seed: int = 4242) -> list[dict[str, Any]]:
    """``count`` issue events (version 1, no prior policy) of vehicles of the generator
    under another seed: VINs the loaded fleet does not hold."""
    found: list[dict[str, Any]] = []
    vin = None
    for event in iter_fleet_events(
        min(count * 2 + 100, 1_000_000), now=datetime.now(UTC), seed=seed
    ):
        if event["vin"] == vin or event["event_type"] not in ("issue", "renew"):
            continue
        vin = event["vin"]
        event = dict(event, event_type="issue", version=1)
        event.pop("prior_policy_no", None)
        event.pop("effective_at", None)
        found.append(event)
        if len(found) == count:
            break
    return found


def police_token() -> str:
    token: str = demo()["police_token"]
    return token


# --------------------------------------------------------------------------- processes


def _pid(file: Path) -> int | None:
    try:
        pid = int(file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def api_pids() -> dict[str, int]:
    found = {}
    for file in sorted(RUN.glob("api-*.pid")):
        pid = _pid(file)
        if pid is not None:
            found[file.stem] = pid
    return found


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _with_descendants(root: int, tree: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def roles() -> dict[str, tuple[int, list[int]]]:
    """Each part of the deployment: (its main pid, every pid of it now). PostgreSQL's
    and nginx's are their master and its children (backends, workers)."""
    tree = _children()
    parts: dict[str, tuple[int, list[int]]] = {}
    for name, pid in api_pids().items():
        parts[name] = (pid, [pid])
    for name, file in (
        ("worker", RUN / "worker.pid"),
        ("nginx", RUN / "nginx.pid"),
        ("pgbouncer", RUN / "pgbouncer.pid"),
        ("redis", RUN / "redis.pid"),
        ("pg-primary", STATE / "pg-primary" / "postmaster.pid"),
        ("pg-replica", STATE / "pg-replica" / "postmaster.pid"),
    ):
        pid = _pid(file)
        if pid is not None:
            parts[name] = (pid, _with_descendants(pid, tree))
    return parts


def _stat(pid: int) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of its children that ended and were waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK, (int(fields[13]) + int(fields[14])) / _TICK


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB; PSS counts a shared page once among its sharers."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds used so far by each part: its live processes, plus what its master
    reaped from children that ended (a PostgreSQL backend that closed)."""
    out = {}
    for name, (main, pids) in roles().items():
        total = sum(_stat(pid)[0] for pid in pids)
        if len(pids) > 1:
            total += _stat(main)[1]
        out[name] = total
    return out


def memory_snapshot() -> dict[str, dict[str, float]]:
    out = {}
    for name, (_, pids) in roles().items():
        rss = pss = 0
        for pid in pids:
            r, p = _memory_kb(pid)
            rss, pss = rss + r, pss + p
        out[name] = {
            "rss_mb": round(rss / 1024, 1),
            "pss_mb": round(pss / 1024, 1),
            "processes": len(pids),
        }
    return out


@dataclass
class CpuWindow:
    """CPU per part between ``start`` and ``stop``, in cores (1.0 = one core's worth)."""

    before: dict[str, float] = field(default_factory=dict)
    machine: tuple[float, float] = (0.0, 0.0)
    wall: float = 0.0

    def start(self) -> None:
        self.before = cpu_snapshot()
        self.machine = _machine()
        self.wall = time.perf_counter()

    def stop(self, requests: int) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        after = cpu_snapshot()
        busy, total = _machine()
        parts = {
            name: {
                "cores": round((after[name] - self.before.get(name, 0.0)) / wall, 3),
                "cpu_ms_per_req": round(
                    (after[name] - self.before.get(name, 0.0)) / max(requests, 1) * 1000, 4
                ),
            }
            for name in after
        }
        cores = (busy - self.machine[0]) / max(total - self.machine[1], 1) * (os.cpu_count() or 1)
        return {"wall_s": round(wall, 1), "machine_busy_cores": round(cores, 2), "parts": parts}


def _machine() -> tuple[float, float]:
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


# --------------------------------------------------------------------------- nginx log

ACCESS_LOG = LOG / "nginx-access.log"
_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) .* rt=(?P<rt>[\d.]+)'
)
KIND_OF_PATH = {
    "/v1/coverage/query": "owner_query",
    "/v1/coverage/verify": "police_verify",
    "/v1/policy-events": "ingest",
}


def log_offset() -> int:
    return ACCESS_LOG.stat().st_size if ACCESS_LOG.exists() else 0


def requests_since(offset: int) -> dict[str, Any]:
    """Per kind of request logged by nginx since ``offset``: how many, statuses, and
    nginx's own p50/p99 of the time it took (ms, millisecond resolution).

    ``errors`` counts every answer other than 2xx except ``499``: nginx's "the client
    closed the connection first", which is what wrk does to the requests still in flight
    when its duration ends (at most one per connection, counted apart as
    ``closed_by_client``)."""
    statuses: dict[str, Counter[str]] = {}
    times: dict[str, list[float]] = {}
    with ACCESS_LOG.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            match = _LINE.search(raw.decode("utf-8", "replace"))
            if not match:
                continue
            kind = KIND_OF_PATH.get(match["path"], "other")
            statuses.setdefault(kind, Counter())[match["status"]] += 1
            times.setdefault(kind, []).append(float(match["rt"]) * 1000)
    out = {}
    for kind, counter in statuses.items():
        seen = sorted(times[kind])
        n = len(seen)
        out[kind] = {
            "requests": n,
            "statuses": dict(sorted(counter.items())),
            "non_2xx": sum(v for k, v in counter.items() if not k.startswith("2")),
            "errors": sum(v for k, v in counter.items() if not k.startswith("2") and k != "499"),
            "closed_by_client": counter.get("499", 0),
            "nginx_p50_ms": seen[n // 2] if n else None,
            "nginx_p99_ms": seen[min(n - 1, int(n * 0.99))] if n else None,
        }
    return out


# --------------------------------------------------------------------------- wrk and output


def wrk(
    script: Path,
    *,
    duration: float,
    connections: int,
    threads: int,
    path: str = "/",
    timeout_s: float = 10,
) -> dict[str, Any]:
    """One wrk run through nginx: throughput, latency percentiles, non-2xx, socket errors.
    ``path`` is for scripts that leave it to wrk (the mix names each request's)."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        BASE + path,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, Any]:
    from measure import _ms

    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else 0.0

    result: dict[str, Any] = {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
    }
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        result[f"p{pct}_ms"] = _ms(match.group(1)) if match else None
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
        if errors
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    return result


def machine_info() -> dict[str, Any]:
    from common import code_fingerprint

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "code": code_fingerprint(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "api_processes": len(api_pids()),
    }


def write_outputs(name: str, result: dict[str, Any], markdown: list[str]) -> tuple[Path, Path]:
    from common import OUT

    OUT.mkdir(parents=True, exist_ok=True)
    json_path, md_path = OUT / f"{name}.json", OUT / f"{name}.md"
    json_path.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    md_path.write_text("\n".join(markdown) + "\n")
    return json_path, md_path
