"""``POST /v1/ask``: questions per second in one process, for the questions that need no
database work (issue 11: at least 1,000/s), and the rules alone.

Three figures, printed as one JSON object like the other benchmarks:

- ``parser_questions_per_s``: ``domain.assistant.understand`` over the corpus of
  ``tests/data/assistant_corpus.jsonl`` (plate, intent and language), one thread;
- ``plan_questions_per_s``: ``Assistant.plan`` (checks, rules and the answer's text);
- ``inprocess_questions_per_s``: the real app (``create_app_from_env``, on an empty
  SQLite database of its own under ``bench/out/ask``) sent ``POST /v1/ask`` straight
  through ASGI by 32 concurrent callers as ``inprocess.py`` does (no sockets, no uvicorn):
  every corpus question without ``vin_last6``, so none of them reads the database. Wall
  clock, one event loop; ``cpu_us_per_question`` is the process CPU per request. The
  request log is written at ``--log-level`` (WARNING by default, so that the JSON stays
  alone on stdout; INFO adds the per-request line a server writes).

With ``--http``, a fourth: ``http_questions_per_s``, ``ctplhub serve`` (one process, on
an SQLite database made by ``ctplhub init`` with the five demo insurers) under ``wrk
-t2 -c32`` POSTing the corpus's questions, in rounds alternating with the plain FastAPI
app of ``plain_app.py`` under the same uvicorn settings; medians and the ratio.

    .venv/bin/python bench/bench_ask.py
    .venv/bin/python bench/bench_ask.py --http --duration 10 --rounds 3
    .venv/bin/python bench/bench_ask.py --requests 2000 --rounds 1   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from inprocess import CONCURRENCY, make_caller

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "assistant_corpus.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "ask"
TARGET_PER_S = 1_000


def questions() -> list[str]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line)["question"] for line in lines if line.strip()]


def rules_per_s(step: Callable[[str], object], asked: list[str], rounds: int) -> float:
    """Median questions/s of ``step`` over ``asked``, ``rounds`` times."""
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for question in asked:
            step(question)
        rates.append(len(asked) / (time.perf_counter() - started))
    return statistics.median(rates)


def fresh_app(log_level: str) -> Any:
    """The real app on a fresh SQLite database and keys of its own."""
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    os.environ.update(
        CTPLHUB_HOME=str(OUT / "home"),
        CTPLHUB_DATABASE_URL=f"sqlite:///{OUT / 'ctplhub.db'}",
        CTPLHUB_LOG_LEVEL=log_level,
    )
    from ctplhub.bootstrap import create_app_from_env, initialise
    from ctplhub.config import load_settings

    initialise(load_settings())
    return create_app_from_env()


async def over_asgi(app: Any, bodies: list[bytes], rounds: int) -> dict[str, Any]:
    call = make_caller(app)
    statuses: dict[int, int] = {}

    async def caller(share: list[bytes]) -> None:
        for body in share:
            status = await call("POST", "/v1/ask", body)
            statuses[status] = statuses.get(status, 0) + 1

    async def one_round() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller(bodies[i::CONCURRENCY]) for i in range(CONCURRENCY)))
        return time.perf_counter() - wall, time.process_time() - cpu

    async with app.router.lifespan_context(app):
        await one_round()  # warm: compiled rules, caches
        statuses.clear()
        timings = [await one_round() for _ in range(rounds)]
    wall = statistics.median(t[0] for t in timings)
    cpu = statistics.median(t[1] for t in timings)
    return {
        "inprocess_questions_per_s": round(len(bodies) / wall),
        "cpu_us_per_question": round(cpu / len(bodies) * 1e6, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def over_http(asked: list[str], rounds: int, duration: float) -> dict[str, Any]:
    """``ctplhub serve`` against the plain app, alternating rounds of ``wrk -t2 -c32``."""
    from common import Home, fresh_home, log, server
    from measure import bodies_script, run_wrk

    script = bodies_script(
        [json.dumps({"question": q}, ensure_ascii=False) for q in asked], OUT / "ask.lua"
    )
    home = Home.for_db("ctplhub_bench_ask", engine="sqlite")
    fresh_home(home)
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "ask": []}
    with (
        server(None, name="plain-ask", ready_path="/docs") as plain,
        server(home, name="ask") as ours,
    ):
        urls = {"plain": f"{plain.base}/v1/coverage/query", "ask": f"{ours.base}/v1/ask"}
        for url in urls.values():  # warm-up
            run_wrk(url, duration=2, script=script)
        for attempt in range(1, rounds + 1):
            for name, url in urls.items():
                runs[name].append(run_wrk(url, duration=duration, script=script))
            p, a = runs["plain"][-1], runs["ask"][-1]
            log(
                f"  round {attempt}: plain {p['rps']:,.0f} req/s | /v1/ask {a['rps']:,.0f} "
                f"req/s (p99 {a['p99_ms']:.1f} ms, non-2xx {a['non_2xx']}) | "
                f"{a['rps'] / p['rps']:.1%}"
            )
    ask_rps = statistics.median(r["rps"] for r in runs["ask"])
    plain_rps = statistics.median(r["rps"] for r in runs["plain"])
    return {
        "http_questions_per_s": round(ask_rps),
        "http_p99_ms": statistics.median(r["p99_ms"] for r in runs["ask"]),
        "http_non_2xx": sum(r["non_2xx"] for r in runs["ask"]),
        "http_plain_fastapi_per_s": round(plain_rps),
        "http_ratio_to_plain": round(ask_rps / plain_rps, 4),
        "http_runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--http", action="store_true", help="also over HTTP, with wrk")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk round")
    args = parser.parse_args(argv)

    from ctplhub.domain.assistant import understand
    from ctplhub.services.assistant import Assistant

    asked = questions()
    assistant = Assistant()
    result: dict[str, Any] = {
        "benchmark": "ask",
        "questions": len(asked),
        "parser_questions_per_s": round(rules_per_s(understand, asked * 20, args.rounds)),
        "plan_questions_per_s": round(rules_per_s(assistant.plan, asked * 20, args.rounds)),
    }
    cycle = [orjson.dumps({"question": q}) for q in asked]
    bodies = (cycle * (args.requests // len(cycle) + 1))[: args.requests]
    result.update(asyncio.run(over_asgi(fresh_app(args.log_level), bodies, args.rounds)))
    if args.http:
        result.update(over_http(asked, args.rounds, args.duration))
    result["target_questions_per_s"] = TARGET_PER_S
    result["meets_target"] = result["inprocess_questions_per_s"] >= TARGET_PER_S and (
        not args.http or result["http_questions_per_s"] >= TARGET_PER_S
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["meets_target"] and set(result["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
