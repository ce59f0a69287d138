"""Fault 5: the deployment's Redis killed mid-load, down for ``--down-for`` seconds, then
started again. Limits degrade safely, never open (docs/DECISIONS.md, "Redis down: never
open"; ``security/nonces.py``).

On a deployment of its own (``deployed.py``), while a client posts batches through nginx,
Redis is killed (SIGKILL: it keeps nothing on disk, so it comes back empty). While it
is down:

- **nonces**: a signed write is refused ``503 storage_unavailable`` with
  ``Retry-After`` (its nonce cannot be checked), and a request accepted before the
  outage, sent again byte for byte, is refused too: never let through unchecked;
- **limits**: past their budget, look-ups without a verification factor are refused
  ``429`` by each API process counting in its own memory (at most one budget per
  process, never unlimited);
- **reads**: an owner's query answers (from the primary: the read fence is in Redis);
  ``/readyz`` reports Redis down.

Redis is started again (``deploy/up.sh``); the client's unanswered batches, resent,
are accepted (a batch signed in the second the new memory began is refused ``401
stale_timestamp`` and resent, signed again, a second later), and the request accepted
before the outage, replayed, is refused ``401 stale_timestamp``: its nonce went with
Redis's memory, its timestamp predates the new one. Then the usual checks: nothing
accepted lost or stored twice, the ledger audit clean, the reminder not doubled.

    .venv/bin/python bench/faults/redis_down.py [--vehicles N] [--down-for S]
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from checks import Reminders, Report, check_all
from deployed import Deployment
from harness import Load, key_of, say, work_dir

from ctplhub.security.request_signing import signed_headers
from ctplhub.services.demo_fleet import iter_fleet_events

FAULT = "Redis down mid-load"
PATH = "/v1/policy-events"
UNVERIFIED_PER_MINUTE = 60  # the default of unverified_per_client (throttle_rules.py)


def own_events(count: int) -> list[dict[str, Any]]:
    """Issue events of vehicles the load does not send, with policy numbers of their own."""
    found = []
    for event in iter_fleet_events(50, now=datetime.now(UTC), seed=77):
        if event["event_type"] == "issue" and event["insurer_code"] == "PICC":
            event = dict(event, policy_no=f"FAULT-REDIS-{len(found) + 1}", version=1)
            event.pop("prior_policy_no", None)
            found.append(event)
        if len(found) == count:
            return found
    raise RuntimeError("the generator gave too few PICC issue events")


class Signed:
    """One signed single-event request, kept byte for byte so it can be sent again."""

    def __init__(self, key: tuple[str, str], event: dict[str, Any]) -> None:
        self.event = event
        self.body = orjson.dumps(event)
        self.key = key
        self.sign()

    def sign(self) -> None:
        self.headers = {
            **signed_headers(*self.key, "POST", PATH, self.body),
            "Content-Type": "application/json",
        }

    def post(self, base: str) -> httpx.Response:
        return httpx.post(base + PATH, content=self.body, headers=self.headers, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--down-for", type=float, default=8, help="seconds Redis stays down")
    args = parser.parse_args()

    work = work_dir("redis_down")
    deployment = Deployment(work)
    report = Report(FAULT)
    try:
        say(f"deployment of its own in {deployment.state} (nginx {deployment.base})")
        deployment.up()
        base = deployment.base
        target = deployment.target()
        reminders = Reminders(target)
        reminders.before_fault(base)
        before, during = (Signed(target.keys["PICC"], e) for e in own_events(2))
        first = before.post(base)
        first.raise_for_status()
        load = Load(target, base, args.vehicles, args.batch)
        load.retry_s = 1.0
        say(f"posting {len(load.batches)} batches of up to {args.batch} events through nginx")
        load.start()
        while load.posted < 2:
            time.sleep(0.01)
        killed_at: list[float] = []

        def kill_redis() -> None:
            os.kill(deployment.pid("redis"), signal.SIGKILL)
            killed_at.append(time.monotonic())

        load.strike_mid_batch(kill_redis)
        say("Redis killed (SIGKILL)")
        time.sleep(0.5)

        ready = deployment.readyz()
        report.check(
            "/readyz reports Redis down, the databases up",
            ready.get("redis", {}).get("status") == "down"  # type: ignore[union-attr]
            and ready.get("database", {}).get("status") == "up",  # type: ignore[union-attr]
            f"parts {ready}",
        )
        refused = during.post(base)
        code = refused.json().get("error", {}).get("code") if refused.content else None
        report.check(
            "a signed write waits: 503 storage_unavailable with Retry-After",
            refused.status_code == 503
            and code == "storage_unavailable"
            and bool(refused.headers.get("Retry-After")),
            f"{refused.status_code} {code}, Retry-After {refused.headers.get('Retry-After')}",
        )
        replay = before.post(base)
        report.check(
            "a request accepted before the outage, sent again, is refused (never open)",
            replay.status_code >= 400,
            f"the replay answered {replay.status_code} (it was answered {first.status_code})",
        )
        owner = httpx.post(
            base + "/v1/coverage/query",
            json={"plate": Reminders.PLATE, "vin_last6": Reminders.VIN[-6:]},
            timeout=30,
        )
        report.check(
            "owner queries answer while Redis is down",
            owner.status_code == 200,
            f"status {owner.status_code}",
        )
        statuses = throttled_lookups(base, 3 * UNVERIFIED_PER_MINUTE * len(deployment.api_ports))
        allowed = statuses.get(200, 0)
        budget = UNVERIFIED_PER_MINUTE * len(deployment.api_ports)
        report.check(
            "limits hold while Redis is down: one budget per API process at most",
            0 < allowed <= budget and statuses.get(429, 0) > 0 and set(statuses) <= {200, 429},
            f"{sum(statuses.values())} look-ups without a factor: {statuses} (at most "
            f"{UNVERIFIED_PER_MINUTE}/minute in each of {len(deployment.api_ports)} processes)",
        )
        time.sleep(max(0.0, args.down_for - (time.monotonic() - killed_at[0])))
        deployment.up()  # idempotent: starts Redis again, leaves the rest running
        say(f"Redis started again after {time.monotonic() - killed_at[0]:.1f} s (empty)")
        load.join()
        # Redis came back empty: the nonce of the request accepted before is forgotten,
        # but it was signed before the new memory began (security/nonces.py).
        replay_after = before.post(base)
        code = replay_after.json().get("error", {}).get("code") if replay_after.content else None
        report.check(
            "a request accepted before the outage, sent again once Redis is back (empty), "
            "is refused 401 stale_timestamp",
            replay_after.status_code == 401 and code == "stale_timestamp",
            f"{replay_after.status_code} {code}",
        )
        during.sign()  # the insurer's retry: a new timestamp and nonce
        resent = during.post(base)
        report.check(
            "the refused write, sent again once Redis is back, is accepted",
            resent.status_code == 201,
            f"status {resent.status_code}",
        )
        report.check(
            "the batches resent after the outage were all answered",
            load.posted == len(load.batches),
            f"{load.posted}/{len(load.batches)} batches answered; answers other than 200: "
            f"{load.answered.errors or 'none'}",
        )
        report.check(
            "writes during the outage answer 503 storage_unavailable, never 500",
            not any(k.startswith("500") for k in load.answered.errors),
            f"answers other than 200: {load.answered.errors or 'none'}",
        )
        for request, answer in ((before, first), (during, resent)):
            key = key_of(request.event)
            load.answered.sent.add(key)
            if answer.status_code == 201:
                leaves = load.answered.accepted.setdefault(key, [])
                leaves.append(answer.json()["receipt"]["leaf_index"])
        check_all(report, target, load.answered, reminders, base)
    finally:
        deployment.destroy()
    report.exit()


def throttled_lookups(base: str, count: int) -> dict[int, int]:
    """``count`` look-ups without a verification factor through nginx, by status."""
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(count):
            answer = client.post("/v1/coverage/query", json={"plate": f"苏E{n % 90000 + 10000}"})
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    return statuses


if __name__ == "__main__":
    main()
