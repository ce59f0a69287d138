"""Loading demo fleets through the real ingest path, `ctplhub import` (parse, validate,
encrypt, store, heads, planner statistics), timed and with the importer's memory, on
either engine. Nothing is done to a database after its import: it is served as an
operator would serve it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from common import (
    CTPLHUB,
    DATA,
    FleetFiles,
    Home,
    count_rows,
    ctplhub,
    fresh_home,
    log,
    write_fleet_files,
)
from measure import db_stats, machine_busy, time_v


@dataclass
class ImportRun:
    insurer: str
    lines: int
    wall_s: float
    cpu_s: float  # user + system time of the importer and its workers (not PostgreSQL)
    max_rss_mb: float  # the largest single process (``/usr/bin/time -v``)
    tree_rss_mb: float  # peak of the summed RSS of the importer and all its workers
    tree_pss_mb: float  # the same as PSS (shared library pages counted once)
    processes: int  # most processes alive at once in the importer's tree
    pg_active_s: float  # time PostgreSQL spent executing the importer's statements
    machine_busy_cores: float  # everything running on the machine meanwhile, ours or not
    summary: dict[str, Any]


def import_file(
    home: Home, insurer: str, path: str, lines: int, command: list[str] | None = None
) -> ImportRun:
    postgres = home.engine == "postgresql"
    _, active_before = db_stats(home.db) if postgres else (0, 0.0)
    busy_before = machine_busy()
    env = home.env()
    if command is not None:  # other code: the baseline of the ingest benchmark
        env["PYTHONPATH"] = command[1]
    argv = [*(command[:1] if command else [CTPLHUB]), "import", path, "--insurer", insurer]
    if command:
        argv[1:1] = ["-c", "import sys; from ctplhub.cli.main import main; sys.exit(main())"]
    t = time_v([*argv, "--json"], env)
    busy_after = machine_busy()
    time.sleep(0.5)  # let the importer's backends flush their statistics as they exit
    _, active_after = db_stats(home.db) if postgres else (0, 0.0)
    busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
    if t.returncode not in (0, 1) or not t.stdout.strip():
        raise RuntimeError(
            f"ctplhub import {path} exited {t.returncode}:\n{t.stdout}\n{t.stderr[-4000:]}"
        )
    summary = json.loads(t.stdout.strip().splitlines()[-1])
    if not summary.get("rejected"):
        summary.pop("errors", None)
    return ImportRun(
        insurer,
        lines,
        t.wall_s,
        t.cpu_s,
        t.max_rss_mb,
        t.tree_rss_mb,
        t.tree_pss_mb,
        t.processes,
        (active_after - active_before) / 1000,
        busy * (os.cpu_count() or 1),
        summary,
    )


def import_fleet(
    home: Home, fleet: FleetFiles, command: list[str] | None = None
) -> list[ImportRun]:
    """Import every file of the fleet, one after the other. ``command`` is ``[python,
    source folder]`` to run another version of the code instead of this one."""
    runs = []
    for code, path in fleet.files.items():
        run = import_file(home, code, path, fleet.lines[code], command)
        log(
            f"  import {code}: {run.lines:,} lines in {run.wall_s:.1f}s "
            f"({run.lines / run.wall_s:,.0f}/s; importer CPU {run.cpu_s:.1f}s, "
            f"PostgreSQL executing {run.pg_active_s:.1f}s; machine "
            f"{run.machine_busy_cores:.2f} cores busy), "
            f"peak RSS {run.max_rss_mb:.0f} MB largest process, {run.tree_rss_mb:.0f} MB "
            f"all {run.processes} processes (PSS {run.tree_pss_mb:.0f} MB), "
            f"accepted {run.summary['accepted']:,} rejected {run.summary['rejected']:,}"
        )
        runs.append(run)
    return runs


def ensure_query_db(
    db: str, policies: int, *, reuse: bool, engine: str = "postgresql"
) -> tuple[Home, dict[str, Any]]:
    """A database with at least ``policies`` policies, loaded through `ctplhub import` and
    nothing else (no manual ``ANALYZE``: the import refreshes what it made stale).

    With ``reuse``, an existing database that already holds enough policies (and whose
    bench state, i.e. the fleet's anchor instant and sample plates, is on disk) is kept.
    """
    home = Home.for_db(db, engine)
    state = home.read_state()
    held = count_rows(home, "policies")
    if reuse and state and held is not None and held >= policies:
        log(f"reusing {engine} {db}: {held:,} policies (>= {policies:,}); migrating to head")
        ctplhub(home, "init")  # the schema may have moved on since the load
        state["policies_in_db"] = held
        return home, state
    log(f"loading {engine} {db} with >= {policies:,} policies through `ctplhub import` ...")
    fresh_home(home)
    started = time.perf_counter()
    fleet = write_fleet_files(DATA / f"{engine}-{db}", policies=policies)
    log(
        f"  wrote {fleet.events:,} events of {fleet.vehicles:,} vehicles "
        f"({fleet.policies:,} policies) in {time.perf_counter() - started:.0f}s"
    )
    started = time.perf_counter()
    runs = import_fleet(home, fleet)
    wall = time.perf_counter() - started
    held = count_rows(home, "policies") or 0
    state = {
        "db": db,
        "engine": engine,
        "now": fleet.now,
        "events": fleet.events,
        "vehicles": fleet.vehicles,
        "policies": fleet.policies,
        "pairs": fleet.pairs,
        "load_wall_s": round(wall, 1),
        "load_events_per_s": round(fleet.events / wall),
        "rejected": sum(r.summary["rejected"] for r in runs),
        "statistics_refreshed": [r.summary.get("statistics_refreshed") for r in runs],
    }
    home.write_state(state)
    for path in fleet.files.values():
        os.unlink(path)
    log(f"  {engine} {db} holds {held:,} policies; loaded in {wall:.0f}s")
    state["policies_in_db"] = held
    return home, state


def query_homes(args: Any) -> dict[str, tuple[Home, dict[str, Any]]]:
    """The query and verify benchmarks' databases, one per engine of ``args.engines``."""
    return {
        engine: ensure_query_db(args.db, args.policies, reuse=args.reuse, engine=engine)
        for engine in args.engines
    }
