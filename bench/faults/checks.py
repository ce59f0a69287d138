"""The checks that must hold after any fault (issue 13, item 5), each printed as PASS or
FAIL with what it compared:

- **events**: every line a batch answer called ``accepted`` is stored once, as the leaf
  its receipt names; everything stored was sent; nothing sent twice is stored twice.
- **ledger**: ``ctplhub ledger audit`` finds nothing.
- **reminders**: a vehicle subscribed before the fault gets its reminder once, however
  many passes run after it (a real SMTP catcher counts the messages).
- **reads**: an owner's query answers again.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta

import httpx
from harness import BEIJING, Answered, EventKey, Target, free_port, say

from ctplhub.client import CtplHubClient
from ctplhub.notify.mail_catcher import MailCatcher


class Report:
    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.failed += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'}  {self.fault}: {name}: {detail}", flush=True)
        return ok

    def exit(self) -> None:
        verdict = "PASS" if not self.failed else f"FAIL ({self.failed} check(s))"
        print(f"==> {self.fault}: {verdict}", flush=True)
        sys.exit(1 if self.failed else 0)


def check_events(report: Report, target: Target, answered: Answered) -> None:
    stored = {
        (insurer, policy_no, int(version)): (int(event_id), count)
        for insurer, policy_no, version, event_id, count in target.rows(
            "SELECT insurer_code, policy_no, version, min(id), count(*) FROM policy_events "
            "GROUP BY insurer_code, policy_no, version"
        )
    }
    leaves = dict(target.rows("SELECT leaf_index, event_id FROM ledger_leaves"))
    lost = [k for k in answered.accepted if k not in stored]
    doubled = [k for k, (_, n) in stored.items() if n > 1]
    twice_accepted = [k for k, idx in answered.accepted.items() if len(idx) > 1]
    wrong_leaf = [
        k
        for k, idx in answered.accepted.items()
        if k in stored and leaves.get(idx[0]) != stored[k][0]
    ]
    unsent = [k for k in stored if k not in answered.sent]
    report.check(
        "accepted events stored",
        not lost and not wrong_leaf,
        f"{len(answered.accepted):,} accepted in answers, {len(lost)} missing from "
        f"policy_events, {len(wrong_leaf)} whose receipt's leaf names another event",
    )
    report.check(
        "no event duplicated",
        not doubled and not twice_accepted and len(leaves) == len(stored),
        f"{len(stored):,} stored keys, {len(doubled)} stored twice, {len(twice_accepted)} "
        f"accepted twice, {len(leaves):,} ledger leaves",
    )
    report.check(
        "everything sent is stored, nothing else",
        not unsent and len(stored) == len(answered.sent),
        f"{len(answered.sent):,} event keys sent, {len(stored):,} stored, {len(unsent)} never "
        f"sent; {answered.unacknowledged_batches} batch post(s) without an answer, resent; "
        f"{answered.duplicates} line(s) of them answered duplicate (stored before the fault)",
    )


def check_audit(report: Report, target: Target) -> None:
    done = target.ctplhub("ledger", "audit", "--workers", "0", "--json", check=False)
    try:
        body = json.loads(done.stdout)
    except ValueError:
        body = {"clean": False, "findings": [done.stderr.strip()[-300:]]}
    report.check(
        "ledger audit clean",
        done.returncode == 0 and body["clean"],
        f"{body.get('leaves', '?')} leaves, {len(body['findings'])} finding(s)",
    )


class Reminders:
    """One vehicle subscribed by e-mail before the fault, its reminder due at ``at``."""

    PLATE, VIN = "苏E·12345", "LSVAU218XN2183294"

    def __init__(self, target: Target) -> None:
        self.folder = target.work / "mail"
        self.folder.mkdir(parents=True, exist_ok=True)
        target.smtp_port = free_port()
        self.catcher = MailCatcher(self.folder, port=target.smtp_port)
        self.catcher.start()
        self.target = target
        today = datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
        self.end = today + timedelta(days=10)
        self.at = self.end - timedelta(days=7) + timedelta(hours=10)

    def subscribe(self, base: str) -> None:
        code = "PICC"
        key_id, secret = self.target.keys[code]
        start = self.end - timedelta(days=365)
        with CtplHubClient(base, key_id, secret) as client:
            receipt = client.report_event(
                {
                    "insurer_code": code,
                    "policy_no": self.KEY[1],
                    "event_type": "issue",
                    "version": 1,
                    "occurred_at": (start - timedelta(days=3)).isoformat(),
                    "plate": self.PLATE,
                    "vin": self.VIN,
                    "vehicle_type": "passenger_small",
                    "use_nature": "family",
                    "owner_name": "张伟",
                    "owner_id_type": "resident_id",
                    "owner_id_number": "11010519491231002X",
                    "owner_phone": "13812345678",
                    "coverage_start": start.isoformat(),
                    "coverage_end": self.end.isoformat(),
                    "premium": "950.00",
                    "region_code": "320500",
                }
            )
        self.leaf_index: int = receipt["receipt"]["leaf_index"]
        answer = httpx.post(
            f"{base}/v1/subscriptions",
            json={
                "plate": self.PLATE,
                "vin_last6": self.VIN[-6:],
                "channel": "email",
                "address": "owner@example.com",
            },
        )
        answer.raise_for_status()

    KEY: EventKey = ("PICC", "FAULT-REMINDER-1", 1)

    def run_pass(self) -> dict[str, int]:
        done = self.target.ctplhub("remind", "run", "--at", self.at.isoformat(), "--json")
        tally: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
        return tally

    def before_fault(self, base: str) -> None:
        """Subscribe, then one pass: the reminder is sent and its outbox rows written."""
        self.subscribe(base)
        self.run_pass()
        self.rows_before = self.target.scalar("SELECT count(*) FROM reminders")

    def check(self, report: Report, answered: Answered) -> None:
        """Two more passes after the fault: still one message, no new outbox row."""
        answered.sent.add(self.KEY)  # sent apart from the load, before the fault
        answered.accepted[self.KEY] = [self.leaf_index]
        self.run_pass()
        self.run_pass()
        mails = len(list(self.folder.glob("*.eml")))
        rows = self.target.scalar("SELECT count(*) FROM reminders")
        report.check(
            "reminders not doubled",
            mails == 1 and rows == self.rows_before,
            f"{mails} message(s) received; {rows} outbox row(s) after two passes after the "
            f"fault, {self.rows_before} after the pass before it",
        )
        self.catcher.stop()


def check_reads(report: Report, base: str) -> None:
    """An owner's query answers again (the read path has connections of its own, which
    the fault may have broken): at most five tries, a second apart."""
    seen: list[int] = []
    body = {"plate": Reminders.PLATE, "vin_last6": Reminders.VIN[-6:]}
    for _ in range(5):
        try:
            seen.append(httpx.post(f"{base}/v1/coverage/query", json=body, timeout=10).status_code)
        except httpx.HTTPError:
            seen.append(0)
        if seen[-1] == 200:
            break
        time.sleep(1)
    report.check("owner queries answer after the fault", seen[-1] == 200, f"statuses {seen}")


def check_all(
    report: Report, target: Target, answered: Answered, reminders: Reminders, base: str
) -> None:
    check_reads(report, base)
    reminders.check(report, answered)
    check_events(report, target, answered)
    check_audit(report, target)
    if answered.errors:
        say(f"answers other than 200 during the run: {answered.errors}")
