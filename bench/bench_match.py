"""Benchmark: the daily match (DESIGN §11; issue 12: 1,000,000 registered vehicles against
1,000,000 policies in under 60 s on PostgreSQL).

The query benchmarks' database (``--db``, loaded by ``ctplhub import``; ``--reuse`` keeps
one) gets a vehicle register of ``--register`` vehicles (``register_fleet.py``: the
fleet's vehicles, most registered, some re-plated, scrapped, deregistered or missing, and
vehicles no insurer reported), fed as an operator's traffic-management system would:
100,000-line NDJSON batches posted to ``POST /v1/register/vehicles`` of ``ctplhub
serve``. A database whose register already holds the lines is not fed again (``--reuse``).
Then ``ctplhub match --at T --json`` runs as cron runs it, under ``/usr/bin/time -v``,
``--repeats`` times; T is the fleet's own "now".

    .venv/bin/python bench/bench_match.py --reuse --engines postgresql
    .venv/bin/python bench/bench_match.py --db ctplhub_bench_smoke --policies 2000 --register 3000
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from common import (
    CTPLHUB,
    Home,
    add_query_db_arguments,
    bench_main,
    count_rows,
    log,
    median,
    server,
)
from loading import query_homes
from measure import time_v
from register_fleet import fleet_vehicles, post_register, register_lines, registrar_token

TARGET_S = {"postgresql": 60.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_db_arguments(parser)
    parser.add_argument("--register", type=int, default=1_000_000, help="vehicles in the register")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ctplhub match")


def feed(home: Home, state: dict[str, Any], vehicles: int) -> dict[str, Any]:
    """The register, posted through ``ctplhub serve`` unless it is there already."""
    held = count_rows(home, "register_lines") or 0
    if held >= vehicles:
        log(f"  register holds {held:,} lines already (>= {vehicles:,} vehicles): not fed again")
        return {"fed": False, "lines_held": held}
    fleet = fleet_vehicles(home)
    log(f"  feeding a register of {vehicles:,} vehicles ({len(fleet):,} from the fleet)")
    tally: dict[str, int] = {}
    now = datetime.fromisoformat(state["now"])
    with server(home, name=f"register-{home.engine}") as srv:
        posted = post_register(
            srv.base, registrar_token(home), register_lines(fleet, vehicles, now, tally)
        )
    log(
        f"  posted {posted['accepted']:,} lines in {posted['batches']} batches in "
        f"{posted['wall_s']:.0f}s (duplicate {posted['duplicate']:,}, rejected "
        f"{posted['rejected']:,} {posted['errors']}); drawn: {tally}"
    )
    return {"fed": True, "posted": posted, "vehicles": tally}


def run_engine(home: Home, state: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    log(f"match bench on {home.engine} ({home.db})")
    fed = feed(home, state, args.register)
    at = state["now"]
    runs = []
    for attempt in range(1, args.repeats + 1):
        timed = time_v([CTPLHUB, "match", "--at", at, "--json"], home.env())
        if timed.returncode != 0:
            raise RuntimeError(f"ctplhub match exited {timed.returncode}:\n{timed.stderr[-4000:]}")
        counts = json.loads(timed.stdout.strip().splitlines()[-1])
        runs.append(
            {
                "wall_s": round(timed.wall_s, 2),
                "cpu_s": round(timed.cpu_s, 2),
                "max_rss_mb": round(timed.max_rss_mb),
                "uninsured": counts["uninsured"]["total"],
                "unmatched": counts["unmatched"]["total"],
            }
        )
        log(
            f"  run {attempt}: {timed.wall_s:.1f}s wall, {timed.cpu_s:.1f}s CPU, "
            f"{timed.max_rss_mb:.0f} MB; {counts['uninsured']['total']:,} uninsured, "
            f"{counts['unmatched']['total']:,} unmatched"
        )
    wall = median([r["wall_s"] for r in runs])
    target = TARGET_S.get(home.engine)
    return {
        "engine": home.engine,
        "db": home.db,
        "policies_in_db": state.get("policies_in_db"),
        "register": fed,
        "at": at,
        "runs": runs,
        "wall_s_median": wall,
        "target": None if target is None else {f"under_{target:g}s": wall < target},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    engines = {
        engine: run_engine(home, state, args) for engine, (home, state) in query_homes(args).items()
    }
    return {"benchmark": "match", "register_vehicles": args.register, "engines": engines}


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, e in result["engines"].items():
        verdict = ""
        if e["target"]:
            [(name, met)] = e["target"].items()
            verdict = f" (target {name.replace('_', ' ')}: {'met' if met else 'MISSED'})"
        lines.append(
            f"ctplhub match on {engine}: {e['wall_s_median']:.1f}s median wall over "
            f"{len(e['runs'])} runs{verdict}; {e['runs'][-1]['uninsured']:,} uninsured, "
            f"{e['runs'][-1]['unmatched']:,} unmatched"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    return bench_main("match", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
