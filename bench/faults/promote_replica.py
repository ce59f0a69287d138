"""Fault 4: promote the replica mid-load (a switchover to the streaming replica).

On a deployment of its own (``deployed.py``: nginx, two API processes, the worker,
PgBouncer, a primary and its streaming replica, Redis), while a client posts batches
through nginx: the primary is stopped (``pg_ctl stop -m fast``, which sends the standby
every WAL record before it ends), the replica promoted (``pg_ctl promote``), and
PgBouncer repointed at it (both its databases, then SIGHUP). The API processes are not
restarted: their broken connections answer ``503 storage_unavailable``, the client
resends those batches, and the writes continue on the new primary. Then the usual checks
against the new primary: nothing accepted lost or stored twice, the ledger audit clean,
the reminder not doubled; plus: the new primary is out of recovery and holds the
batches answered after the promotion.

``--stop-mode immediate`` crashes the primary instead: with asynchronous streaming
replication the last commits may never reach the replica, and ``accepted events stored``
then says how many answered-accepted events the promotion lost (the figure to weigh
against ``synchronous_commit = remote_apply``; docs/deploy.md).

    .venv/bin/python bench/faults/promote_replica.py [--vehicles N] [--stop-mode fast]
"""

from __future__ import annotations

import argparse
import time

from checks import Reminders, Report, check_all
from deployed import Deployment
from harness import Load, say, work_dir

FAULT = "promote the replica mid-load"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--stop-mode", choices=("fast", "immediate"), default="fast")
    args = parser.parse_args()

    work = work_dir("promote_replica")
    deployment = Deployment(work)
    report = Report(f"{FAULT} ({args.stop_mode} stop)")
    try:
        say(f"deployment of its own in {deployment.state} (nginx {deployment.base})")
        deployment.up()
        target = deployment.target()
        reminders = Reminders(target)
        reminders.before_fault(deployment.base)
        load = Load(target, deployment.base, args.vehicles, args.batch)
        load.retry_s = 1.0
        say(f"posting {len(load.batches)} batches of up to {args.batch} events through nginx")
        load.start()
        while load.posted < 2:
            time.sleep(0.01)
        switched: dict[str, float] = {}

        def promote() -> None:
            started = time.monotonic()
            deployment.pg_ctl("pg-primary", "stop", "-m", args.stop_mode)
            switched["primary_stopped_s"] = time.monotonic() - started
            deployment.pg_ctl("pg-replica", "promote")
            deployment.repoint_pgbouncer("REPLICA_PORT")
            switched["posted_at_switch"] = load.posted
            switched["took_s"] = time.monotonic() - started

        struck = load.strike_mid_batch(promote)
        say(
            f"primary stopped ({args.stop_mode}) in {switched['primary_stopped_s']:.1f} s, "
            f"replica promoted and PgBouncer repointed in {switched['took_s']:.1f} s "
            f"(a batch in flight: {struck})"
        )
        load.join()
        # From now on the checks read the new primary.
        target.url = deployment.direct_url("REPLICA_PORT")
        recovery = deployment.psql("REPLICA_PORT", "SELECT pg_is_in_recovery()")
        after = load.posted - int(switched["posted_at_switch"])
        report.check(
            "the replica is the primary now, and the writes went on there",
            recovery == "f" and after > 0 and load.posted == len(load.batches),
            f"pg_is_in_recovery() = {recovery}; {load.posted}/{len(load.batches)} batches "
            f"answered, {after} of them after the promotion",
        )
        errors = load.answered.errors
        report.check(
            "writes during the switch answer 503 storage_unavailable, never 500",
            not any(k.startswith("500") for k in errors),
            f"answers other than 200: {errors or 'none'}",
        )
        api_alive = all(_alive(deployment.pid(f"api-{port}")) for port in deployment.api_ports)
        report.check(
            "the API processes stayed up",
            api_alive,
            f"api processes on {deployment.api_ports} alive: {api_alive}",
        )
        check_all(report, target, load.answered, reminders, deployment.base)
    finally:
        deployment.destroy()
    report.exit()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    main()
