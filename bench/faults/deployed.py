"""A `make deploy-local` deployment of a fault run's own (nginx, two API processes, the
worker, a PostgreSQL primary and its streaming replica behind PgBouncer, Redis), built by
``deploy/up.sh`` itself in a temporary directory (``CTPLHUB_DEPLOY_DIR``) on free ports,
torn down by ``deploy/down.sh`` and deleted at the end. The deployment faults (replica
promotion, Redis down) break it at will; the deployment on 8080 and its data, if any,
are never touched.

Its demo loads no vehicle (``VEHICLES=0``): the database holds only what the fault's
load sends, so the checks can compare what was sent with what is stored. The demo's
insurers and their keys (``home/demo.json``) are the load's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from harness import Target, free_port, say

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class Deployment:
    def __init__(self, work: Path) -> None:
        # Not under bench/out: the postgres user must be able to reach every parent.
        self.root = Path(tempfile.mkdtemp(prefix="ctplhub-faults-deploy-"))
        self.root.chmod(0o711)
        self.state = self.root / "deploy"
        self.work = work
        self.ports = {
            name: free_port()
            for name in (
                "NGINX_PORT",
                "PRIMARY_PORT",
                "REPLICA_PORT",
                "PGBOUNCER_PORT",
                "REDIS_PORT",
                "WORKER_METRICS_PORT",
            )
        }
        self.api_ports = [free_port(), free_port()]
        self.base = f"http://127.0.0.1:{self.ports['NGINX_PORT']}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({name: str(port) for name, port in self.ports.items()})
        env.update(
            CTPLHUB_DEPLOY_DIR=str(self.state),
            API_PORTS=" ".join(map(str, self.api_ports)),
            CTPLHUB=str(Path(sys.executable).parent / "ctplhub"),
            VEHICLES="0",
            PG_BIN=str(PG_BIN),
        )
        return env

    def _script(self, name: str) -> None:
        log = self.work / "deploy.log"
        with log.open("a") as out:
            done = subprocess.run(
                [str(REPO / "deploy" / name)], env=self.env(), stdout=out, stderr=out, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(f"deploy/{name} exited {done.returncode}; see {log}")

    def up(self) -> None:
        """``deploy/up.sh``: also what starts a stopped part again (it is idempotent)."""
        self._script("up.sh")

    def down(self) -> None:
        self._script("down.sh")

    def destroy(self) -> None:
        try:
            if self.state.exists():
                self.down()
        finally:
            # The logs are worth keeping with the run's other files.
            if (self.state / "log").exists():
                shutil.copytree(self.state / "log", self.work / "deploy-log", dirs_exist_ok=True)
            shutil.rmtree(self.root, ignore_errors=True)

    # ----------------------------------------------------------------- what it holds

    def secrets(self) -> dict[str, str]:
        lines = (self.state / "secrets.env").read_text().splitlines()
        return {k: v for k, _, v in (line.partition("=") for line in lines) if k}

    def direct_url(self, port_name: str = "PRIMARY_PORT") -> str:
        """The application's role straight to one cluster (the checks read there)."""
        password = self.secrets()["DB_PASSWORD"]
        return f"postgresql://ctplhub:{password}@127.0.0.1:{self.ports[port_name]}/ctplhub"

    def target(self) -> Target:
        """The fault harness's target: the primary, the deployment's key directory, and
        the demo insurers' keys."""
        target = Target(self.direct_url(), self.state / "home", self.work)
        demo = json.loads((self.state / "home" / "demo.json").read_text())
        target.keys = {c: (k["key_id"], k["secret"]) for c, k in demo["insurers"].items()}
        return target

    def police_token(self) -> str:
        demo = json.loads((self.state / "home" / "demo.json").read_text())
        token: str = demo["police_token"]
        return token

    def pid(self, name: str) -> int:
        return int((self.state / "run" / f"{name}.pid").read_text().split()[0])

    def readyz(self) -> dict[str, object]:
        answer = httpx.get(f"{self.base}/readyz", timeout=10)
        parts: dict[str, object] = answer.json().get("parts", {})
        return parts

    # ----------------------------------------------------------------- PostgreSQL

    def as_postgres(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, capture_output=True, text=True)

    def pg_ctl(self, cluster: str, *args: str) -> None:
        self.as_postgres("pg_ctl", "-D", str(self.state / cluster), "-w", *args)

    def psql(self, port_name: str, sql: str) -> str:
        done = self.as_postgres(
            "psql", "-h", str(self.state / "run"), "-p", str(self.ports[port_name]),
            "-d", "postgres", "-qAtc", sql,
        )  # fmt: skip
        return done.stdout.strip()

    def repoint_pgbouncer(self, port_name: str) -> None:
        """Both of PgBouncer's databases (``ctplhub``, ``ctplhub_replica``) to one cluster,
        then SIGHUP: PgBouncer re-reads its file; clients' next server connections go
        there."""
        ini = self.state / "pgbouncer" / "pgbouncer.ini"
        port = self.ports[port_name]
        lines = []
        for line in ini.read_text().splitlines():
            if line.startswith(("ctplhub = ", "ctplhub_replica = ")):
                name = line.split(" = ", 1)[0]
                line = f"{name} = host=127.0.0.1 port={port} dbname=ctplhub"
            lines.append(line)
        ini.write_text("\n".join(lines) + "\n")
        os.kill(self.pid("pgbouncer"), 1)
        say(f"PgBouncer repointed at 127.0.0.1:{port}")
