"""Benchmark: finding the reminders due among 1,000,000 policies (issue 9: under 2 s on
PostgreSQL and on SQLite).

For each engine, the query benchmarks' database (``--db``, at least ``--policies``
policies, loaded by `ctplhub import`; ``--reuse`` keeps one already loaded) gets
``--share`` of its vehicles subscribed (one e-mail subscription each, sealed like any
address), then ``RemindersService.decide(at)`` is timed at the fleet's anchor instant:

- ``first``: the outbox emptied before each repeat (not timed), so every due reminder
  is found and written — the daily pass after a quiet day, at its worst;
- ``rerun``: the same instant again, nothing new to write (the pass a worker repeats
  every minute).

Medians of ``--repeats``. Subscriptions and reminders are replaced on every run (the
database is a bench database; nothing else is touched).

    .venv/bin/python bench/bench_reminders_due.py --reuse          # the issue's scale
    .venv/bin/python bench/bench_reminders_due.py --policies 2000 --db ctplhub_bench_small
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime
from typing import Any

from common import Home, add_query_db_arguments, bench_main, log, median
from loading import query_homes
from sqlalchemy import delete, func, insert, select

from ctplhub.bootstrap import Container, build_container, build_keyring
from ctplhub.config import Settings
from ctplhub.security.keystore import load_keys
from ctplhub.security.unsubscribe import UnsubscribeTokens
from ctplhub.services.reminders import address_aad, address_index_value
from ctplhub.store.tables import policies, reminders, subscriptions

TARGET_S = 2.0
_BATCH = 5_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.add_argument(
        "--share", type=float, default=0.10, help="share of vehicles with a subscription"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each kind")
    parser.add_argument("--seed", type=int, default=9, help="which vehicles subscribe")


def subscribe_share(container: Container, share: float, seed: int, at: datetime) -> int:
    """Replace every subscription with one e-mail subscription for ``share`` of the
    vehicles (chosen by ``seed``), made before ``at``."""
    engine = container.engine
    vault = build_keyring(load_keys(container.settings.home), engine, container.settings.home)
    tokens = UnsubscribeTokens(b"bench")
    with engine.begin() as conn:
        conn.execute(delete(reminders))
        conn.execute(delete(subscriptions))
        vins = sorted(v for (v,) in conn.execute(select(policies.c.vin).distinct()))
    chosen = random.Random(seed).sample(vins, round(len(vins) * share))
    rows = []
    for i, vin in enumerate(chosen):
        address = f"owner{i}@example.com"
        salt = tokens.new_salt()
        rows.append(
            {
                "vin": vin,
                "channel": "email",
                "address_enc": vault.encrypt(address, aad=address_aad(vin, "email")),
                "address_bidx": vault.blind_index(address_index_value("email", address)),
                "language": "zh-CN" if i % 5 else "en",
                "token_salt": salt,
                "token_hash": tokens.digest(tokens.token(salt)),
                "source": "owner",
                "created_at": at.replace(year=at.year - 1),
                "ended_at": None,
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(rows), _BATCH):
            conn.execute(insert(subscriptions), rows[start : start + _BATCH])
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE subscriptions")
            conn.exec_driver_sql("ANALYZE reminders")
        else:
            conn.exec_driver_sql("ANALYZE")
    return len(rows)


def timed(container: Container, at: datetime, *, empty_first: bool) -> tuple[float, Any]:
    if empty_first:
        with container.engine.begin() as conn:
            conn.execute(delete(reminders))
    started = time.perf_counter()
    tally = container.reminders.decide(at)
    return time.perf_counter() - started, tally


def run_engine(args: argparse.Namespace, home: Home, state: dict[str, Any]) -> dict[str, Any]:
    at = datetime.fromisoformat(state["now"])
    container = build_container(Settings(database_url=home.url, home=home.path, redis_url=None))
    try:
        subscribed = subscribe_share(container, args.share, args.seed, at)
        with container.engine.connect() as conn:
            held = conn.execute(select(func.count()).select_from(policies)).scalar_one()
        timed(container, at, empty_first=True)  # warm the caches once, not measured
        first = [timed(container, at, empty_first=True) for _ in range(args.repeats)]
        rerun = [timed(container, at, empty_first=False) for _ in range(args.repeats)]
    finally:
        container.close()
    tally = first[-1][1]
    result = {
        "policies": held,
        "subscriptions": subscribed,
        "at": at.isoformat(),
        "written_per_pass": {
            "queued": tally.queued,
            "skipped": tally.skipped,
            "alerts": tally.alerts,
        },
        "first_s": [round(s, 3) for s, _ in first],
        "first_median_s": round(median([s for s, _ in first]), 3),
        "rerun_s": [round(s, 3) for s, _ in rerun],
        "rerun_median_s": round(median([s for s, _ in rerun]), 3),
    }
    result["target_met"] = result["first_median_s"] < TARGET_S
    log(f"  {home.engine}: {result}")
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    homes = query_homes(args)
    engines = {engine: run_engine(args, *homes[engine]) for engine in args.engines}
    return {
        "benchmark": "reminders_due",
        "share": args.share,
        "repeats": args.repeats,
        "engines": engines,
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"due reminders on {engine} among {e['policies']:,} policies "
        f"({e['subscriptions']:,} subscribed): {e['first_median_s']:.3f} s writing "
        f"{e['written_per_pass']['queued']:,}, {e['rerun_median_s']:.3f} s on a rerun "
        f"(target < {TARGET_S:g} s: {'met' if e['target_met'] else 'MISSED'})"
        for engine, e in result["engines"].items()
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("reminders_due", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
