"""Measuring: CPU and memory of processes (ours and PostgreSQL's), how busy the
machine is, and HTTP load with `wrk`.

The machine is shared and has two cores, so every figure a benchmark prints comes with
what it cost (server CPU, PostgreSQL CPU, summed memory of a process tree) and how busy
the whole machine was meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import admin_connection, log


@dataclass
class Timed:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    tree_rss_mb: float
    tree_pss_mb: float
    processes: int
    stdout: str
    stderr: str
    returncode: int


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; zeros when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            rss = int(statm.read().split()[1]) * _PAGE // 1024
        pss = rss
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        return 0, 0
    return rss, pss


class TreeMemory:
    """Samples the summed memory of every descendant of ``root`` (the importer and the
    worker processes it starts) five times a second; ``/usr/bin/time`` only reports the
    largest single process."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.peak_rss_kb = self.peak_pss_kb = self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(self.root)
            sizes = [_memory_kb(pid) for pid in pids]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(r for r, _ in sizes))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(p for _, p in sizes))
            self.processes = max(self.processes, sum(1 for r, _ in sizes if r))
            self._stop.wait(self.interval)


def time_v(argv: Sequence[str], env: dict[str, str]) -> Timed:
    """Run ``argv`` under ``/usr/bin/time -v``: wall and CPU seconds (the process and its
    children), peak RSS of the largest process and of the whole process tree, output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as report:
        report_path = report.name
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", report_path, *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with TreeMemory(proc.pid) as memory:
            stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
        text = Path(report_path).read_text()
    finally:
        os.unlink(report_path)

    def number(label: str) -> float:
        match = re.search(rf"{re.escape(label)}: ([\d.]+)", text)
        return float(match.group(1)) if match else float("nan")

    return Timed(
        wall_s=wall,
        cpu_s=number("User time (seconds)") + number("System time (seconds)"),
        max_rss_mb=number("Maximum resident set size (kbytes)") / 1024,
        tree_rss_mb=memory.peak_rss_kb / 1024,
        tree_pss_mb=memory.peak_pss_kb / 1024,
        processes=memory.processes,
        stdout=stdout,
        stderr=stderr,
        returncode=proc.returncode,
    )


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _backends(db: str) -> list[int]:
    with admin_connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def db_stats(db: str) -> tuple[int, float]:
    """(sessions opened, milliseconds spent executing statements) for database ``db``."""
    with admin_connection() as conn:
        row = conn.execute(
            "SELECT sessions, active_time FROM pg_stat_database WHERE datname = %s", (db,)
        ).fetchone()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and of each process below it (the server's signer
    process), by pid."""
    return {pid: _cpu_of(pid) for pid in (root, *_descendants(root))}


class CpuMeter:
    """What a load run cost between :meth:`start` and :meth:`stop`: CPU seconds of the
    server process and the processes it started (its signer), CPU seconds of the
    PostgreSQL backends of database ``db`` that live through the run (the server's pooled
    connections), the sessions opened on ``db``, and how busy the whole machine was.
    (``pg_active_s`` comes from ``pg_stat_database``, which long-lived pooled backends
    flush late: trust it only for backends that exit, as an importer's do.)
    Other databases' backends (e.g. someone else's tests) are not counted, but they do
    show in the machine figure."""

    def __init__(self, server_pid: int, db: str | None) -> None:
        self.server_pid, self.db = server_pid, db
        self._server: dict[int, float] = {}
        self._pg: dict[int, float] = {}
        self._stats = (0, 0.0)
        self._machine = (0.0, 0.0)
        self._wall = 0.0

    def start(self) -> None:
        self._stats = db_stats(self.db) if self.db else (0, 0.0)
        self._pg = {pid: _cpu_of(pid) for pid in _backends(self.db)} if self.db else {}
        self._server = _tree_cpu(self.server_pid)
        self._machine = machine_busy()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        busy, total = machine_busy()
        server_cpu = sum(
            cpu - self._server.get(pid, 0.0) for pid, cpu in _tree_cpu(self.server_pid).items()
        )
        if self.db is None:  # SQLite: the database is the server process
            return {
                "wall_s": wall,
                "server_cpu_s": server_cpu,
                "pg_cpu_s": 0.0,
                "pg_sessions": 0,
                "pg_active_s": 0.0,
                "machine_busy_cores": (busy - self._machine[0])
                / max(total - self._machine[1], 1)
                * (os.cpu_count() or 1),
            }
        pg_cpu = sum(_cpu_of(pid) - self._pg.get(pid, 0.0) for pid in _backends(self.db))
        time.sleep(1.2)  # backends flush their statistics about once a second
        sessions, active_ms = db_stats(self.db)
        busy_share = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        return {
            "wall_s": wall,
            "server_cpu_s": server_cpu,
            "pg_cpu_s": pg_cpu,
            "pg_sessions": sessions - self._stats[0],
            "pg_active_s": (active_ms - self._stats[1]) / 1000,
            "machine_busy_cores": busy_share * (os.cpu_count() or 1),
        }


def wait_quiet(max_wait: float, *, below: float = 0.35, window: float = 5.0) -> float:
    """Wait until the machine has been nearly idle (fewer than ``below`` cores busy) for
    ``window`` seconds, at most ``max_wait`` seconds (others share this machine).
    Returns the busy cores last seen."""
    deadline = time.monotonic() + max_wait
    waited = False
    while True:
        before = machine_busy()
        time.sleep(window)
        after = machine_busy()
        cores = (after[0] - before[0]) / max(after[1] - before[1], 1) * (os.cpu_count() or 1)
        if cores < below or time.monotonic() >= deadline:
            if waited or cores >= below:
                log(f"machine at {cores:.2f} busy cores; going on")
            return cores
        if not waited:
            log(f"machine busy ({cores:.2f} cores) with other work; waiting up to {max_wait:.0f}s")
            waited = True


# --------------------------------------------------------------------------- wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int = 32,
    threads: int = 2,
    script: Path | None = None,
) -> dict[str, Any]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    proc = subprocess.run([*argv, url], capture_output=True, text=True, check=True)
    out = proc.stdout
    result: dict[str, Any] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
    }
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        result[f"p{pct}_ms"] = _ms(match.group(1)) if match else None
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = errors.group(1).strip() if errors else None
    result["non_2xx_share"] = result["non_2xx"] / result["requests"] if result["requests"] else 0
    return result


def query_script(pairs: Sequence[tuple[str, str]], path: Path) -> Path:
    """A wrk Lua script POSTing `/v1/coverage/query` bodies, cycling over ``pairs``; each
    thread starts at a different offset."""
    bodies = [
        json.dumps({"plate": plate, "vin_last6": tail}, ensure_ascii=False) for plate, tail in pairs
    ]
    return bodies_script(bodies, path)


def bodies_script(bodies: Sequence[str], path: Path) -> Path:
    """A wrk Lua script POSTing JSON ``bodies`` to the URL wrk is given, cycling over
    them; each thread starts at a different offset."""
    lua_bodies = ",\n".join("  " + _lua_string(body) for body in bodies)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""-- generated by bench/measure.py: {len(bodies)} JSON bodies
local bodies = {{
{lua_bodies}
}}
local n = #bodies
local threads = 0
local requests = {{}}
local i = 0

function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

function init(args)
  local headers = {{["Content-Type"] = "application/json"}}
  for k = 1, n do
    requests[k] = wrk.format("POST", nil, headers, bodies[k])
  end
  i = (offset or 0) % n
end

function request()
  i = i % n + 1
  return requests[i]
end
""",
        encoding="utf-8",
    )
    return path


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
