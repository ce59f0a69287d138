"""``make faults``: every fault script in turn, each in a process of its own; exit 1 if
any failed. Not part of ``make test``: the faults need root (tmpfs mounts, a throwaway
PostgreSQL cluster or deployment run as ``postgres``) and take minutes.

    .venv/bin/python bench/faults/run_all.py [--vehicles N] [--only redis_down,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, arguments): the order is cheapest first; the deployment's faults last, each on
# a deployment of its own (deployed.py: nginx, PgBouncer, a primary and its replica, Redis).
FAULTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kill_api", ("--engine", "sqlite")),
    ("kill_api", ("--engine", "postgresql")),
    ("disk_full", ()),
    ("pg_restart", ()),
    ("promote_replica", ()),
    ("redis_down", ()),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--only", default="", help="comma-separated script names")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the fault scripts mount file systems and run PostgreSQL as postgres: run as root")
    chosen = {name for name in args.only.split(",") if name}
    results: list[tuple[str, int]] = []
    for script, extra in FAULTS:
        if chosen and script not in chosen:
            continue
        argv = [sys.executable, str(HERE / f"{script}.py"), "--vehicles", str(args.vehicles)]
        done = subprocess.run([*argv, *extra], check=False)
        results.append((" ".join([script, *extra]), done.returncode))
    print("\nfaults:")
    for name, code in results:
        print(f"  {'PASS' if code == 0 else 'FAIL'}  {name}")
    sys.exit(0 if results and all(code == 0 for _, code in results) else 1)


if __name__ == "__main__":
    main()
