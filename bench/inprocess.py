"""Where a verified query's server CPU goes, without HTTP: the ASGI apps called
in-process.

The real app (``create_app_from_env``) on a 1M-policy database of the chosen engine and
the plain FastAPI app of ``plain_app.py`` are each sent ``POST /v1/coverage/query`` (the
query benchmark's bodies) by 32 concurrent callers straight through ASGI, with no
sockets and no uvicorn. It prints the process CPU per request of each, so that ``query
- plain`` is what answering costs on top of the framework; the gap between these figures
and ``bench_query.py``'s is what HTTP costs. ``--profile`` adds a cProfile listing of a
query round (cProfile inflates Python-level costs; use it to find the code, and py-spy
(``profile_spy.py``) for shares).

    .venv/bin/python bench/inprocess.py --rounds 3
    .venv/bin/python bench/inprocess.py --engine sqlite --rounds 1 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvloop
from common import add_query_db_arguments, log, median, spread
from loading import ensure_query_db

CONCURRENCY = 32  # as wrk -c32 in bench_query.py


def make_caller(app: Any) -> Callable[[str, str, bytes], Awaitable[int]]:
    async def call(method: str, path: str, body: bytes = b"") -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # a disconnect never comes
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    return call


async def cpu_per_request(
    requests: list[Callable[[], Awaitable[int]]],
) -> tuple[float, dict[int, int]]:
    """Process CPU µs per request with CONCURRENCY callers; and the status codes seen."""
    statuses: dict[int, int] = {}

    async def caller(share: list[Callable[[], Awaitable[int]]]) -> None:
        for request in share:
            status = await request()
            statuses[status] = statuses.get(status, 0) + 1

    started = time.process_time()
    await asyncio.gather(*(caller(requests[i::CONCURRENCY]) for i in range(CONCURRENCY)))
    return (time.process_time() - started) / len(requests) * 1e6, statuses


async def measure(args: argparse.Namespace) -> None:
    home, state = ensure_query_db(args.db, args.policies, reuse=True, engine=args.engine)
    os.environ.update(home.env())
    from plain_app import app as plain

    from ctplhub.bootstrap import create_app_from_env

    app = create_app_from_env()
    call, call_plain = make_caller(app), make_caller(plain)
    bodies = [
        orjson.dumps({"plate": plate, "vin_last6": tail})
        for plate, tail in spread([tuple(p) for p in state["pairs"]], args.pairs)
    ]

    def constant() -> list[Callable[[], Awaitable[int]]]:
        return [lambda b=b: call_plain("POST", "/v1/coverage/query", b) for b in bodies]

    def query() -> list[Callable[[], Awaitable[int]]]:
        return [lambda b=b: call("POST", "/v1/coverage/query", b) for b in bodies]

    async with app.router.lifespan_context(app):
        await cpu_per_request(query())  # warm: pool, caches, first compilations
        constant_us, query_us = [], []
        for attempt in range(1, args.rounds + 1):
            c, c_status = await cpu_per_request(constant())
            q, q_status = await cpu_per_request(query())
            constant_us.append(c)
            query_us.append(q)
            log(f"round {attempt}: plain {c:.1f} µs {c_status} | query {q:.1f} µs {q_status}")
        c, q = median(constant_us), median(query_us)
        print(
            f"in-process CPU per request on {args.engine} (median of {args.rounds}): plain "
            f"FastAPI {c:.1f} µs, query {q:.1f} µs; answering costs {q - c:.1f} µs more"
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await cpu_per_request(query())
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_query_db_arguments(parser)
    parser.add_argument("--engine", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--pairs", type=int, default=5_000, help="distinct vehicles queried")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each")
    parser.add_argument("--profile", action="store_true", help="cProfile one query round")
    args = parser.parse_args()
    uvloop.run(measure(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
