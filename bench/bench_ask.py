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

HTTP through ``ctplhub serve`` adds what ``bench_query.py`` shows the framework costs:
``wrk -t2 -c32 -s ask.lua`` against it is the way to see that (not scripted here).

    .venv/bin/python bench/bench_ask.py
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--log-level", default="WARNING")
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
    result["target_questions_per_s"] = TARGET_PER_S
    result["meets_target"] = result["inprocess_questions_per_s"] >= TARGET_PER_S
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["meets_target"] and set(result["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
