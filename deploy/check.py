"""`make deploy-check`: the deployment of `make deploy-local`, checked from outside,
through nginx only (docs/deploy.md).

1. ``/readyz`` reports every part up: the primary, the replica (with its lag), Redis;
   the worker's process answers on its metrics port.
2. Read-your-writes: each of a run of new policies, reported with a signed request, is
   at once in the owner's answer and in a police bulk verify, whichever API process
   nginx hands each request to.
3. The same with the replica held stale on purpose (its replay paused): every read
   right after a write still sees it (from the primary), and ``/readyz`` shows the lag;
   replay resumed, reads go back to the replica.
4. Every API process answered (``CTPLHUB_DEPLOY_API_PROCS`` of them, 2 by default, or
   those ``API_PORTS`` names: the setting deploy/lib.sh reads). With one, reads still go
   through nginx to it and the check stands.

Exits non-zero with the reason on the first failure. Never part of `make test`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ctplhub.client import CtplHubClient
from ctplhub.services.demo_fleet import iter_fleet_events

STATE = Path(os.environ.get("CTPLHUB_DEPLOY_DIR", Path(__file__).parent.parent / "var/deploy"))
BASE = f"http://127.0.0.1:{os.environ.get('NGINX_PORT', '8080')}"


def api_ports(env: Mapping[str, str]) -> list[str]:
    """The API processes' ports, as deploy/lib.sh names them: ``API_PORTS`` if given, else
    ``CTPLHUB_DEPLOY_API_PROCS`` (1-9, default 2) on 8101, 8102, ..."""
    procs = env.get("CTPLHUB_DEPLOY_API_PROCS") or "2"
    if not (len(procs) == 1 and procs in "123456789"):
        fail(f"CTPLHUB_DEPLOY_API_PROCS must be 1 to 9, got {procs!r}")
    if env.get("API_PORTS"):
        return env["API_PORTS"].split()
    return [str(8100 + n) for n in range(1, int(procs) + 1)]


WORKER_METRICS = f"http://127.0.0.1:{os.environ.get('WORKER_METRICS_PORT', '8109')}/metrics"
WRITES = 20
IN_FORCE = ("ACTIVE", "EXPIRING_SOON")
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def on_replica(sql: str) -> None:
    """As the replica's superuser, over its socket (deploy/lib.sh's ``as_db``)."""
    command = [f"{PG_BIN}/psql", "-h", str(STATE / "run"), "-p", "5441", "-d", "postgres"]
    if os.getuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run([*command, "-qAtc", sql], check=True, stdout=subprocess.DEVNULL)


def fail(message: str) -> None:
    print(f"deploy-check FAILED: {message}")
    sys.exit(1)


API_PORTS = api_ports(os.environ)


def sample(metrics: str, name: str, labels: str = "") -> float:
    for line in metrics.splitlines():
        if line.startswith(f"{name}{labels} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def fresh_policies(now: datetime) -> list[dict[str, Any]]:
    """Issue events in force now, of a fleet the demo never loaded, numbered anew."""
    found = []
    for event in iter_fleet_events(500, now=now, seed=random.randrange(10**6)):
        start = datetime.fromisoformat(event["coverage_start"])
        end = datetime.fromisoformat(event["coverage_end"])
        if event["event_type"] == "issue" and start <= now < end:
            event["policy_no"] = "CHK" + uuid.uuid4().hex[:17].upper()
            event["version"] = 1
            found.append(event)
        if len(found) == WRITES:
            return found
    fail("the synthetic fleet gave too few policies in force")
    return found


def check_ready(http: httpx.Client) -> None:
    answer = http.get("/readyz")
    if answer.status_code != 200:
        fail(f"/readyz answered {answer.status_code}: {answer.text}")
    parts = answer.json()["parts"]
    print("readyz parts:", json.dumps(parts))
    for name in ("database", "replica", "redis"):
        if parts.get(name, {}).get("status") != "up":
            fail(f"/readyz: {name} is not up ({parts.get(name)})")
    if httpx.get(WORKER_METRICS, timeout=5).status_code != 200:
        fail("the worker's metrics port does not answer")
    print("worker: metrics answer")


def routed(port: str) -> dict[str, float]:
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {
        db: sample(metrics, "ctplhub_reads_routed_total", f'{{database="{db}"}}')
        for db in ("primary", "replica")
    }


def routed_since(before: dict[str, dict[str, float]]) -> dict[str, float]:
    now = {port: routed(port) for port in API_PORTS}
    return {db: sum(now[p][db] - before[p][db] for p in API_PORTS) for db in ("primary", "replica")}


def write_then_read(http: httpx.Client, demo: dict[str, Any], label: str) -> None:
    """Each new policy reported, then at once asked for, through nginx to either process."""
    before = {port: routed(port) for port in API_PORTS}
    policies = fresh_policies(datetime.now(UTC))
    clients: dict[str, CtplHubClient] = {}
    for event in policies:
        code = event["insurer_code"]
        if code not in clients:
            keys = demo["insurers"][code]
            clients[code] = CtplHubClient(BASE, keys["key_id"], keys["secret"])
        clients[code].report_event(event)
        # With the verification factor: the owner's full answer, and outside the budget of
        # plain plate look-ups per client address (60 a minute, all of them 127.0.0.1 here).
        question = {"plate": event["plate"], "vin_last6": event["vin"][-6:]}
        answer = http.post("/v1/coverage/query", json=question)
        if answer.status_code != 200 or answer.json()["status"] not in IN_FORCE:
            fail(f"a read right after a write did not see it: {answer.status_code} {answer.text}")
    for client in clients.values():
        client.close()
    verify = http.post(
        "/v1/coverage/verify",
        json={"items": [{"plate": e["plate"]} for e in policies], "purpose": "enforcement"},
        headers={"Authorization": f"Bearer {demo['police_token']}"},
    )
    if verify.status_code != 200:
        fail(f"bulk verify answered {verify.status_code}: {verify.text}")
    statuses = {item["status"] for item in verify.json()["results"]}
    if "NO_RECORD" in statuses:
        fail("bulk verify after the writes missed one of them")
    print(f"{label}: {WRITES} writes, each read back at once in force, bulk verify {statuses}")
    print(f"{label}: reads routed {routed_since(before)}")


def main() -> None:
    demo = json.loads((STATE / "home/demo.json").read_text())
    http = httpx.Client(base_url=BASE, timeout=30)
    check_ready(http)
    first = {port: routed(port) for port in API_PORTS}
    write_then_read(http, demo, "replica streaming")

    on_replica("SELECT pg_wal_replay_pause()")
    try:
        before = {port: routed(port) for port in API_PORTS}
        write_then_read(http, demo, "replica paused")
        if routed_since(before)["primary"] == 0:
            fail("with the replica paused, no read went to the primary")
        lag = http.get("/readyz").json()["parts"]["replica"]
        print("readyz replica while paused:", json.dumps(lag))
        if not lag.get("lag_leaves"):
            fail("/readyz shows no lag while the replica is paused")
    finally:
        on_replica("SELECT pg_wal_replay_resume()")
    write_then_read(http, demo, "replica resumed")

    for port in API_PORTS:
        after = routed(port)
        if after == first[port]:
            fail(f"API process {port} answered no read through nginx")
    print("deploy-check passed")


if __name__ == "__main__":
    main()
