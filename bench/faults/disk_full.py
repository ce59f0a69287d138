"""Fault 5: the disk full under the SQLite default.

The SQLite database (both its files) lives on a small tmpfs mounted for the run (root
is needed: ``mount -t tmpfs``; unmounted after). While a client posts batches, a filler
file takes every free byte. The API must then answer each write with ``503`` and the
stable ``error.code`` ``storage_unavailable`` (never a bare 500), stay up, store nothing
half-done, and accept the same batches again once the filler is removed. Then the usual
checks, plus SQLite's own ``PRAGMA integrity_check``.

    .venv/bin/python bench/faults/disk_full.py [--size-mb 40] [--vehicles N]
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from checks import Reminders, Report, check_all
from harness import Load, Server, Target, say, work_dir

FAULT = "disk full on the SQLite default"


def fill(folder: Path) -> int:
    """Write a filler file until the file system refuses a byte more; its size."""
    filler = folder / "filler"
    written = 0
    with filler.open("wb", buffering=0) as file:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    written += file.write(b"\0" * size)
            except OSError:
                continue
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=40)
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--full-for", type=float, default=5.0, help="seconds the disk stays full")
    args = parser.parse_args()

    work = work_dir("disk_full")
    disk = work / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs", str(disk)], check=True
    )
    report = Report(FAULT)
    server: Server | None = None
    try:
        target = Target(f"sqlite:///{disk / 'ctplhub.db'}", work / "home", work)
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
        filled = fill(disk)
        say(f"disk full: filler of {filled / 1e6:.1f} MB; holding for {args.full_for} s")
        full_since = dict(load.answered.errors)
        time.sleep(args.full_for)
        while_full = {
            k: v - full_since.get(k, 0)
            for k, v in load.answered.errors.items()
            if v > full_since.get(k, 0)
        }
        (disk / "filler").unlink()
        say(f"space freed; answers while full: {while_full}")
        report.check(
            "a full disk answers 503 storage_unavailable",
            bool(while_full) and set(while_full) == {"503 storage_unavailable"},
            f"answers to batch posts while full: {while_full or 'none'}",
        )
        load.join()
        report.check(
            "the API stayed up and recovered by itself",
            server.alive() and load.posted == len(load.batches),
            f"{load.posted}/{len(load.batches)} batches answered, same process throughout",
        )
        integrity = target.scalar("PRAGMA integrity_check")
        report.check("SQLite integrity_check", integrity == "ok", f"answered {integrity!r}")
        check_all(report, target, load.answered, reminders, server.base)
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", str(disk)], check=False)
    report.exit()


if __name__ == "__main__":
    main()
