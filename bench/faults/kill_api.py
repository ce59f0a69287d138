"""Fault 1: ``kill -9`` the API process while it stores a batch.

A client posts the demo fleet in per-insurer batches; while the third batch (or a later
one) is in flight the `ctplhub serve` process is killed with SIGKILL, so some chunks of
that batch may be committed and none answered. The API is started again; the client
posts the unanswered batch again, whole, then the rest. Then: every accepted event is
stored once (the repeat's committed lines come back ``duplicate``, never twice), the
ledger audit is clean, the subscribed vehicle's reminder went out once.

On PostgreSQL, a throwaway cluster of its own (``cluster.py``; root is needed).

    .venv/bin/python bench/faults/kill_api.py [--engine sqlite|postgresql] [--vehicles N]
"""

from __future__ import annotations

import argparse
import time

from checks import Reminders, Report, check_all
from cluster import Cluster
from harness import Load, Server, Target, say, work_dir

FAULT = "kill -9 an API process mid-batch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    work = work_dir(f"kill_api-{args.engine}")
    cluster = Cluster() if args.engine == "postgresql" else None
    report = Report(f"{FAULT} ({args.engine})")
    server: Server | None = None
    try:
        if cluster is not None:
            cluster.create()
        url = cluster.url if cluster is not None else f"sqlite:///{work / 'ctplhub.db'}"
        target = Target(url, work / "home", work)
        reminders = Reminders(target)
        target.prepare()
        server = Server(target)
        server.start()
        reminders.before_fault(server.base)
        load = Load(target, server.base, args.vehicles, args.batch)
        say(f"posting {len(load.batches)} batches of up to {args.batch} events")
        load.start()
        while load.posted < 2:
            time.sleep(0.01)
        in_flight = load.strike_mid_batch(server.kill)
        say(f"killed the API (pid {server.proc.pid if server.proc else '?'}) mid-batch")
        report.check(
            "the kill hit a batch in flight",
            in_flight,
            f"{load.posted} batches answered before the kill",
        )
        server.start()  # the same port: the client's next try reaches it
        say("API restarted; the client resends the unanswered batch")
        load.join()
        report.check(
            "every batch answered after the restart",
            load.posted == len(load.batches),
            f"{load.posted}/{len(load.batches)} batches answered",
        )
        check_all(report, target, load.answered, reminders, server.base)
    finally:
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.destroy()
    report.exit()


if __name__ == "__main__":
    main()
