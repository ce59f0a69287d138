"""Fault 2: PostgreSQL restarted under load (a crash: ``pg_ctl restart -m immediate``,
so the server recovers from its WAL as after a power cut).

Only ever against a throwaway cluster of its own (``cluster.py``); the shared server on
5432 is never touched.

While a client posts batches, the cluster is crashed and started again. The API, not
restarted, must answer the writes it cannot do ``503 storage_unavailable`` (never a
bare 500), reconnect by itself, and lose nothing a batch answer called accepted; the
client resends the batches that got no answer. Then the usual checks.

    .venv/bin/python bench/faults/pg_restart.py [--vehicles N] [--pg-bin DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from checks import Reminders, Report, check_all
from cluster import PG_BIN, Cluster
from harness import Load, Server, Target, say, work_dir

FAULT = "restart PostgreSQL mid-load"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg-bin", type=Path, default=PG_BIN)
    args = parser.parse_args()

    work = work_dir("pg_restart")
    cluster = Cluster(args.pg_bin)
    report = Report(FAULT)
    server: Server | None = None
    try:
        cluster.create()
        say(f"throwaway cluster on port {cluster.port} ({cluster.data})")
        target = Target(cluster.url, work / "home", work)
        reminders = Reminders(target)
        target.prepare()
        server = Server(target)
        server.start()
        reminders.before_fault(server.base)
        load = Load(target, server.base, args.vehicles, args.batch)
        load.retry_s = 1.0
        say(f"posting {len(load.batches)} batches of up to {args.batch} events")
        load.start()
        while load.posted < 2:
            time.sleep(0.01)
        took: list[float] = []
        load.strike_mid_batch(lambda: took.append(cluster.crash_and_restart()))
        say(f"PostgreSQL crashed and restarted in {took[0]:.1f} s")
        load.join()
        errors = load.answered.errors
        report.check(
            "writes during the restart answer 503 storage_unavailable",
            not any(k.startswith("500") for k in errors)
            and set(errors) <= {"503 storage_unavailable"},
            f"answers other than 200: {errors or 'none'}",
        )
        report.check(
            "the API reconnected by itself",
            server.alive() and load.posted == len(load.batches),
            f"{load.posted}/{len(load.batches)} batches answered, same API process throughout",
        )
        check_all(report, target, load.answered, reminders, server.base)
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()
    report.exit()


if __name__ == "__main__":
    main()
