"""Where the time goes: sample a benchmark's Python process with py-spy.

``query`` and ``verify`` start the server on the benchmark database, load it (wrk, or
repeated bulk calls) and sample the server process; ``ingest`` samples one ``ctplhub
import`` of ``--events`` events into a fresh database. Prints the functions with the most
samples (self, and inclusive) and keeps the raw collapsed stacks in ``bench/out/``.
Needs ``py-spy`` in the virtualenv (``.venv/bin/pip install py-spy``).

    .venv/bin/python bench/profile_spy.py query --seconds 15
    .venv/bin/python bench/profile_spy.py ingest --events 200000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import (
    CTPLHUB,
    DATA,
    OUT,
    PYTHON,
    Home,
    fresh_home,
    log,
    police_token,
    server,
    spread,
    write_fleet_files,
)
from measure import query_script

PY_SPY = str(Path(PYTHON).parent / "py-spy")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def summarise(raw: Path, top: int) -> str:
    """Top functions by self samples and by inclusive samples from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "self (leaf) time:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def record(pid: int, seconds: float, raw: Path, gil: bool) -> None:
    argv = [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--threads"]
    argv += ["--format", "raw", "--output", str(raw), "--rate", "200", "--nonblocking"]
    if gil:
        argv.append("--gil")
    subprocess.run(argv, check=True, capture_output=True)


def profile_query(args: argparse.Namespace) -> Path:
    home = Home.for_db(args.db, args.engine)
    state = home.read_state()
    if state is None:
        raise SystemExit(f"no bench state for {args.db}: run bench_query.py first")
    pairs = spread([tuple(p) for p in state["pairs"]], 5_000)
    script = query_script(pairs, OUT / "query.lua")
    raw = OUT / f"profile-query-{args.engine}{'-gil' if args.gil else ''}.txt"
    with server(home, name="profile-query") as srv:
        load = subprocess.Popen(
            ["wrk", "-t2", "-c32", f"-d{args.seconds + 4:g}s", "-s", str(script),
             f"{srv.base}/v1/coverage/query"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2)
        record(srv.pid, args.seconds, raw, args.gil)
        load.wait()
    return raw


def profile_verify(args: argparse.Namespace) -> Path:
    home = Home.for_db(args.db, args.engine)
    state = home.read_state()
    if state is None:
        raise SystemExit(f"no bench state for {args.db}: run bench_verify.py first")
    items = [{"plate": p} for p, _ in spread([tuple(p) for p in state["pairs"]], 10_000)]
    token = police_token(home)
    raw = OUT / f"profile-verify-{args.engine}{'-gil' if args.gil else ''}.txt"
    with server(home, name="profile-verify") as srv:
        done = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=srv.base, timeout=300) as client:
                while not done.is_set():
                    client.post(
                        "/v1/coverage/verify",
                        json={"items": items},
                        headers={"Authorization": f"Bearer {token}"},
                    ).raise_for_status()

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(1)
        try:
            record(srv.pid, args.seconds, raw, args.gil)
        finally:
            done.set()
            worker.join()
    return raw


def profile_ingest(args: argparse.Namespace) -> Path:
    home = Home.for_db("ctplhub_bench_profile")
    fresh_home(home)
    fleet = write_fleet_files(DATA / "profile", events=args.events)
    code, path = max(fleet.files.items(), key=lambda item: fleet.lines[item[0]])
    raw = OUT / "profile-ingest.txt"
    log(f"profiling `ctplhub import` of {fleet.lines[code]:,} {code} events")
    argv = [PY_SPY, "record", "--format", "raw", "--output", str(raw), "--rate", "200"]
    argv.append("--subprocesses")  # the importer may hand the work to worker processes
    argv += ["--", CTPLHUB, "import", path, "--insurer", code, "--json"]
    subprocess.run(argv, env=home.env(), check=True, capture_output=True)
    for file in fleet.files.values():
        Path(file).unlink()
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["query", "verify", "ingest"])
    parser.add_argument("--db", default="ctplhub_bench", help="database of query/verify")
    parser.add_argument("--engine", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--seconds", type=float, default=15, help="sampling time (server)")
    parser.add_argument("--events", type=int, default=200_000, help="ingest: fleet events")
    parser.add_argument("--gil", action="store_true", help="only threads holding the GIL")
    parser.add_argument("--top", type=int, default=30, help="functions shown")
    args = parser.parse_args(argv)
    target = {"query": profile_query, "verify": profile_verify, "ingest": profile_ingest}
    raw = target[args.target](args)
    text = summarise(raw, args.top)
    summary = raw.with_suffix(".summary.txt")
    summary.write_text(text + "\n")
    print(text)
    log(f"raw stacks in {raw}, summary in {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
