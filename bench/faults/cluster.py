"""A PostgreSQL cluster of a fault run's own: ``initdb`` in a temporary directory, run
as the ``postgres`` user (``runuser``; root is needed) on a free port, stopped and
deleted at the end. The faults crash and restart it at will, and their connections
never count against a shared server's ``max_connections``; the shared server on 5432
is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Cluster:
    """A PostgreSQL cluster of this run's own, as the ``postgres`` user."""

    def __init__(self, bindir: Path = PG_BIN) -> None:
        self.bindir = bindir
        # Not under bench/out: the postgres user must be able to reach every parent.
        self.root = Path(tempfile.mkdtemp(prefix="ctplhub-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        shutil.chown(self.root, "postgres", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/ctplhub_faults"

    def _as_postgres(self, tool: str, *args: str) -> None:
        argv = ["runuser", "-u", "postgres", "--", str(self.bindir / tool), *args]
        subprocess.run(argv, check=True, capture_output=True)

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args
        )

    def create(self) -> None:
        self._as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C",
        )  # fmt: skip
        self._pg_ctl("start")
        self._as_postgres(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "ctplhub_faults"
        )

    def crash_and_restart(self) -> float:
        started = time.monotonic()
        self._pg_ctl("restart", "-m", "immediate")
        return time.monotonic() - started

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)
