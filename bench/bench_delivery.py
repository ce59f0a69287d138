"""Benchmark: reminder delivery to a local webhook receiver, one worker (issue 9's
figure: at least 500 messages/s).

For each engine and each repeat: a fresh database (`ctplhub init`, new keys) whose
outbox holds ``--messages`` pending webhook reminders (one subscription each, sealed like
real ones, all due at one daytime instant; written straight into the tables by
``tests/outbox_rows.py``), then one delivery pass in this process: the worker's own code
(``notify.delivery.Delivery`` with the channels and options ``ctplhub worker`` builds from
the settings), which claims, signs, POSTs and records each message with its own commit.
The receiver (``webhook_receiver.py``, uvicorn + uvloop, in another process) answers 200
at once and counts distinct message ids; the run fails unless every message arrived and
is recorded ``sent``. Figures: messages/s of each repeat and their median, as JSON.

    .venv/bin/python bench/bench_delivery.py                       # 20,000 messages, 3 repeats
    .venv/bin/python bench/bench_delivery.py --messages 500 --repeats 1 --engines sqlite
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from common import (
    BENCH,
    ENGINES,
    LOGS,
    PYTHON,
    ROOT,
    Home,
    free_port,
    fresh_home,
    log,
    machine,
    median,
    write_results,
)
from sqlalchemy import func, select

from ctplhub.bootstrap import build_container
from ctplhub.config import load_settings
from ctplhub.notify.delivery import Delivery, run_loop
from ctplhub.notify.wiring import build_channels, delivery_options
from ctplhub.store.tables import reminders

sys.path.insert(0, str(ROOT / "tests"))  # the tests' outbox filler: one way to write rows
from outbox_rows import fill_outbox

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing: not quiet hours


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    out = (LOGS / "webhook-receiver.log").open("wb")
    proc = subprocess.Popen(
        [PYTHON, str(BENCH / "webhook_receiver.py"), "--port", str(port)], stdout=out, stderr=out
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/count", timeout=1)
            return proc, base
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the webhook receiver did not start; see its log") from None
            time.sleep(0.1)


def one_run(home: Home, base: str, messages: int, overrides: dict[str, Any]) -> dict[str, Any]:
    fresh_home(home)
    settings = load_settings(database_url=home.url, home=home.path, **overrides)
    container = build_container(settings)
    try:
        started = time.perf_counter()
        urls = [f"{base}/hook?n={i}" for i in range(messages)]
        fill_outbox(container.engine, home.path, urls, channel="webhook", due_at=AT)
        filled_s = time.perf_counter() - started
        httpx.delete(f"{base}/count")
        spent: dict[str, float] = {}

        async def deliver() -> tuple[float, Any]:
            delivery = Delivery(
                container.reminder_outbox(),
                build_channels(settings, container.webhook_key),
                options=delivery_options(settings),
            )
            try:
                began, cpu = time.perf_counter(), time.process_time()
                tally = await delivery.run(lambda: AT)
                spent["cpu_s"] = time.process_time() - cpu  # this process, all its threads
                return time.perf_counter() - began, tally
            finally:
                await delivery.aclose()

        seconds, tally = run_loop(deliver())  # as the worker runs it
        counts = httpx.get(f"{base}/count").json()
        with container.engine.connect() as conn:
            sent = conn.execute(
                select(func.count()).select_from(reminders).where(reminders.c.state == "sent")
            ).scalar_one()
    finally:
        container.close()
    if not (tally.sent == sent == counts["distinct"] == messages):
        raise RuntimeError(f"not everything delivered once: {tally}, {sent} sent, {counts}")
    return {
        "seconds": round(seconds, 3),
        "messages_per_s": round(messages / seconds, 1),
        "fill_s": round(filled_s, 2),
        # CPU per message of the delivering process: less sensitive than messages/s to
        # other work on the machine (one core at 100 % is 1000 / this, in messages/s).
        "cpu_ms_per_message": round(spent["cpu_s"] * 1000 / messages, 3),
        "received": counts["received"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.concurrency:
        overrides["delivery_concurrency"] = args.concurrency
    if args.batch:
        overrides["delivery_batch"] = args.batch
    proc, base = start_receiver()
    results: dict[str, Any] = {}
    try:
        for engine in args.engines:
            home = Home.for_db(args.db, engine)
            runs = []
            for repeat in range(args.repeats):
                log(f"delivery {engine}: repeat {repeat + 1}/{args.repeats}, {args.messages:,}")
                runs.append(one_run(home, base, args.messages, overrides))
                log(f"  {runs[-1]['messages_per_s']:,} messages/s")
            settings = load_settings(database_url=home.url, home=home.path, **overrides)
            options = delivery_options(settings)
            results[engine] = {
                "messages": args.messages,
                "concurrency": options.concurrency,
                "batch": options.batch,
                "db_threads": options.db_threads,
                "runs": runs,
                "median_messages_per_s": median([r["messages_per_s"] for r in runs]),
                "median_cpu_ms_per_message": median([r["cpu_ms_per_message"] for r in runs]),
            }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


def summary_lines(results: dict[str, Any]) -> list[str]:
    return [
        f"delivery to a local webhook ({engine}): {r['median_messages_per_s']:,.0f} messages/s, "
        f"{r['median_cpu_ms_per_message']} ms CPU per message "
        f"(median of {len(r['runs'])}, {r['messages']:,} messages, target ≥ 500/s)"
        for engine, r in results.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="outbox rows per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--db", default="ctplhub_bench_delivery", help="database name")
    parser.add_argument("--concurrency", type=int, default=0, help="sends in flight (0: setting)")
    parser.add_argument("--batch", type=int, default=0, help="rows per claim (0: setting)")
    args = parser.parse_args(argv)
    payload = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "argv": sys.argv[1:] if argv is None else argv,
        "delivery": run(args),
    }
    payload["summary"] = summary_lines(payload["delivery"])
    path = write_results("delivery", payload)
    print(json.dumps(payload, ensure_ascii=False, indent=2))
    log(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
