"""Which way to read SQLite from the server: the measurement behind
``store/readers/sqlite.py`` (the issue asked to measure a read on the event loop against
a thread hop, and keep the faster).

Three readers of the same 1M-policy SQLite database, each served like `ctplhub serve`
(``uvicorn.run``, one process, no access log), under the query benchmark's load
(``wrk -t2 -c32``), in alternating rounds:

- ``loop``: every read right on the event loop;
- ``thread``: every question handed to a worker thread and back;
- ``batched`` (what ships): questions asked while a read is in flight go together to a
  worker thread, as on PostgreSQL.

    .venv/bin/python bench/sqlite_read_modes.py --reuse --duration 10 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
from common import (
    BENCH,
    LOGS,
    OUT,
    PYTHON,
    add_wait_quiet,
    bench_main,
    free_port,
    log,
    median,
    spread,
)
from loading import ensure_query_db
from measure import CpuMeter, query_script, run_wrk, wait_quiet

from ctplhub.domain.vehicle import VehicleSnapshot
from ctplhub.store.readers.sqlite import SqliteVehicleReader

MODES = ("loop", "thread", "batched")


class OnTheLoop(SqliteVehicleReader):
    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        return self.read(plates, vins)


class ThreadPerQuestion(SqliteVehicleReader):
    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        return await self._on_thread(list(plates), list(vins))


def create_app() -> Any:
    """``uvicorn sqlite_read_modes:create_app --factory``, mode from ``BENCH_READ_MODE``."""
    from sqlalchemy.engine import make_url

    from ctplhub.bootstrap import create_app_from_env

    path = make_url(os.environ["CTPLHUB_DATABASE_URL"]).database
    assert path is not None
    reader = {"loop": OnTheLoop, "thread": ThreadPerQuestion, "batched": SqliteVehicleReader}
    return create_app_from_env(reader[os.environ["BENCH_READ_MODE"]](path))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="ctplhub_bench", help="SQLite database name")
    parser.add_argument("--policies", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    add_wait_quiet(parser)


def serve(mode: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "import uvicorn; uvicorn.run('sqlite_read_modes:create_app', factory=True, "
        f"app_dir={str(BENCH)!r}, host='127.0.0.1', port={port}, workers=1, "
        "access_log=False, log_config=None)"
    )
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"read-mode-{mode}.log").open("w") as out:
        proc = subprocess.Popen(
            [PYTHON, "-c", code], env={**env, "BENCH_READ_MODE": mode}, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{mode} server did not start")


def run(args: argparse.Namespace) -> dict[str, Any]:
    home, state = ensure_query_db(args.db, args.policies, reuse=args.reuse, engine="sqlite")
    script = query_script(spread([tuple(p) for p in state["pairs"]], 5_000), OUT / "modes.lua")
    servers = {mode: serve(mode, home.env()) for mode in MODES}
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    try:
        for _, base in servers.values():
            run_wrk(f"{base}/v1/coverage/query", duration=3, script=script)  # warm
        for attempt in range(1, args.repeats + 1):
            for mode, (proc, base) in servers.items():
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                meter = CpuMeter(proc.pid, None)
                meter.start()
                result = run_wrk(f"{base}/v1/coverage/query", duration=args.duration, script=script)
                cpu = meter.stop()
                result["server_cpu_ms_per_req"] = cpu["server_cpu_s"] / result["requests"] * 1000
                rounds[mode].append(result)
                cost = result["server_cpu_ms_per_req"]
                log(f"  run {attempt} {mode}: {result['rps']:,.0f} req/s, p99 "
                    f"{result['p99_ms']:.1f} ms, {cost:.3f} ms CPU/req")  # fmt: skip
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
    return {
        "benchmark": "sqlite_read_modes",
        "db": str(home.sqlite_file),
        "modes": {
            mode: {
                "rps_median": round(median([r["rps"] for r in runs])),
                "p99_ms_median": median([r["p99_ms"] for r in runs]),
                "server_cpu_ms_per_req_median": median([r["server_cpu_ms_per_req"] for r in runs]),
                "runs": runs,
            }
            for mode, runs in rounds.items()
        },
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"SQLite reads {mode}: {m['rps_median']:,} req/s, p99 {m['p99_ms_median']:.1f} ms, "
        f"{m['server_cpu_ms_per_req_median']:.3f} ms CPU per request"
        for mode, m in result["modes"].items()
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("sqlite_read_modes", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
