"""``ctplhub demo``: five insurers, a synthetic fleet, demo accounts and sample plates.

Loading is idempotent: the fleet is anchored to the instant of the first load (kept in
``CTPLHUB_HOME/demo.json``), so running the demo again re-sends the same events, which
are duplicates, and prints the same samples.

Reminders (:func:`demo_reminders`): a local mail catcher on 127.0.0.1:1025 keeps every
message under ``CTPLHUB_HOME/mail/``; the sample vehicles whose cover ends soon or has
lapsed are subscribed by e-mail and one reminder pass runs, so the first reminders are
there to open before the server starts. The catcher keeps running while the demo serves.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import socket
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from ctplhub.anpr.broker import Broker
from ctplhub.bootstrap import Container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant
from ctplhub.domain.reminders import in_quiet_hours, next_send_instant
from ctplhub.notify.mail_catcher import MailCatcher
from ctplhub.notify.wiring import build_delivery
from ctplhub.services.check_coverage import CoverageQuery
from ctplhub.services.demo_fleet import DEMO_INSURERS, generate_fleet
from ctplhub.services.ports import Reader
from ctplhub.services.reminders import SUBSCRIBE_PURPOSE, SubscriptionRequest
from ctplhub.services.report_events import CHUNK_SIZE, RawLine

MAIL_CATCHER_PORT = 1025
# Samples whose owners are told something now: cover ending within 30 days, or lapsed.
_REMINDED_STATUSES = ("EXPIRING_SOON", "LAPSED")
_catchers: list[MailCatcher] = []  # kept for the life of the demo process


def _state_file(container: Container) -> Any:
    return container.settings.home / "demo.json"


def _load_state(container: Container) -> dict[str, Any]:
    path = _state_file(container)
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(container: Container, state: dict[str, Any]) -> None:
    path = _state_file(container)
    path.write_text(json.dumps(state, ensure_ascii=False, indent=2))
    os.chmod(path, 0o600)  # holds demo secrets and a demo token


def load_demo(
    container: Container, vehicles: int, *, console: Console, progress: bool = True
) -> dict[str, Any]:
    state = _load_state(container)
    if state.get("vehicles") != vehicles:
        state = {"vehicles": vehicles, "now": datetime.now(UTC).isoformat(), "insurers": {}}
    now = datetime.fromisoformat(state["now"])
    for code, name in DEMO_INSURERS:
        if code in state["insurers"]:
            continue
        try:
            new = container.insurers.add(code, name, actor="demo")
        except DomainError:
            continue  # registered by an earlier demo whose state file was removed
        state["insurers"][code] = {"key_id": new.key_id, "secret": new.secret}
    if "police_token" not in state:
        try:
            state["police_token"] = container.users.add("demo-police", "police")
            # A password for the staff pages (/staff), made here and kept in the demo's
            # state file with the token: the demo's only secrets, never a default.
            state["police_password"] = secrets.token_urlsafe(12)
            container.users.set_password("demo-police", state["police_password"])
        except DomainError:
            state["police_token"] = None
    _save_state(container, state)

    fleet = generate_fleet(vehicles, now=now)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    pending: dict[str, list[RawLine]] = defaultdict(list)
    line = 0
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )

    def flush(code: str) -> None:
        for result in container.report_events.report_many(pending.pop(code), insurer_code=code):
            counts[result.status.value] += 1

    with bar:
        task = bar.add_task("loading demo fleet (vehicles)", total=vehicles)
        last_vin = None
        for event in fleet.events:
            line += 1
            code = event["insurer_code"]
            pending[code].append((line, event))
            if len(pending[code]) >= CHUNK_SIZE:
                flush(code)
            if event["vin"] != last_vin:
                last_vin = event["vin"]
                bar.advance(task)
        for code in list(pending):
            flush(code)
    # No worker runs in the demo: its flags pass runs here, once the fleet is stored.
    if container.quality_flags is not None:
        container.quality_flags.flag_pending()
    return {
        "vehicles": vehicles,
        "anchored_at": state["now"],
        **counts,
        "insurers": [
            {"insurer_code": code, "key_id": keys["key_id"]}
            for code, keys in state["insurers"].items()
        ],
        "police_token": state.get("police_token"),
        "police_password": state.get("police_password"),
        "secrets_file": str(_state_file(container)),
        "samples": [
            {
                "plate": s.plate,
                "vin_last6": s.vin_last6,
                "expected_status": s.expected_status,
                "story": s.story,
            }
            for s in fleet.samples
        ],
    }


def print_samples(report: dict[str, Any], console: Console) -> None:
    console.print(
        f"demo fleet: {report['vehicles']:,} vehicles — {report['accepted']:,} events accepted, "
        f"{report['duplicate']:,} already there, {report['rejected']:,} rejected"
    )
    table = Table("plate 号牌", "VIN tail 车架号后六位", "expected status", "story",
                  title="sample vehicles: try them at http://127.0.0.1:8000/")  # fmt: skip
    for s in report["samples"]:
        table.add_row(s["plate"], s["vin_last6"], s["expected_status"], s["story"])
    console.print(table)
    if report.get("police_token"):
        console.print(f"police token for POST /v1/coverage/verify: {report['police_token']}")
    if report.get("police_password"):
        console.print(
            "staff pages http://127.0.0.1:8000/staff: sign in as demo-police with password "
            f"{report['police_password']}"
        )
    console.print(f"insurer API keys and secrets: {report['secrets_file']}")


def demo_reminders(
    container: Container, report: dict[str, Any], *, console: Console, port: int = MAIL_CATCHER_PORT
) -> dict[str, Any]:
    """Start the mail catcher, subscribe the sample vehicles with something to be told
    (one address each, Chinese and English in turn), and run one reminder pass."""
    folder = container.settings.home / "mail"
    samples = report.get("samples") or []
    if not samples:  # nothing loaded (a test of the command itself): no catcher either
        return {"mail_catcher": None, "mail_folder": str(folder), "subscribed": [], "sent": 0}

    def announce(path: Path, subject: str) -> None:
        console.print(f"[green]mail caught[/green] {path}: {subject}")

    try:
        catcher = MailCatcher(folder, port=port, announce=announce)
        catcher.start()
    except (OSError, RuntimeError) as error:  # the port is taken (another demo?)
        console.print(f"[yellow]no mail catcher on 127.0.0.1:{port}: {error}[/yellow]")
        return {"mail_catcher": None, "mail_folder": str(folder), "subscribed": [], "sent": 0}
    _catchers.append(catcher)
    subscribed = asyncio.run(_subscribe_samples(container, samples))
    now = container.reminders.now()
    at = next_send_instant(now) if in_quiet_hours(now) else now
    container.reminders.decide(at)
    settings = container.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    )
    tally = build_delivery(
        settings, container.reminder_outbox(), webhook_key=container.webhook_key
    )(at)
    return {
        "mail_catcher": f"127.0.0.1:{port}",
        "mail_folder": str(folder),
        "subscribed": subscribed,
        "at": format_instant(at),
        "quiet_hours_now": at != now,
        "sent": tally.sent,
    }


async def _subscribe_samples(container: Container, samples: list[dict[str, Any]]) -> list[str]:
    reader = Reader("demo", "owner", SUBSCRIBE_PURPOSE)
    made: list[str] = []
    await container.reader.open()
    try:
        for n, sample in enumerate(
            s for s in samples if s["expected_status"] in _REMINDED_STATUSES
        ):
            request = SubscriptionRequest(
                CoverageQuery(plate=sample["plate"], vin_last6=sample["vin_last6"]),
                channel="email",
                address=f"owner{n + 1}@demo.ctplhub.example",
                language="en" if n % 2 else "zh-CN",
            )
            try:
                await container.reminders.subscribe(request, reader)
            except DomainError:
                continue
            made.append(sample["plate"])
    finally:
        await container.reader.close()
    return made


def print_reminders(reminders: dict[str, Any], console: Console) -> None:
    if not reminders.get("mail_catcher"):
        return
    when = (
        " (quiet hours in Beijing now: sent as of the next 08:00)"
        if reminders.get("quiet_hours_now")
        else ""
    )
    console.print(
        f"reminders: {', '.join(reminders['subscribed']) or 'no sample'} subscribed by e-mail; "
        f"{reminders['sent']} sent{when} to the mail catcher on {reminders['mail_catcher']}, "
        f"kept in {reminders['mail_folder']}/ (open the .eml files)"
    )


@dataclass(frozen=True)
class CamerasConsumer:
    """The demo's ``ctplhub anpr run`` process: where it listens, and how to stop it (it
    also stops when the demo exits)."""

    address: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_anpr_consumer(container: Container, console: Console) -> CamerasConsumer | None:
    """Roadside cameras (DESIGN §12): when a broker answers at ``CTPLHUB_MQTT_URL``
    (127.0.0.1:1883 by default), ``ctplhub anpr run`` starts beside the server and stops
    with the demo; else the demo goes on without it (None)."""
    settings = container.settings
    broker = Broker.from_url(settings.mqtt_url)
    try:
        with socket.create_connection((broker.host, broker.port), timeout=1):
            pass
    except OSError:
        console.print(
            f"no MQTT broker at {broker.host}:{broker.port}: roadside cameras not started "
            "(install mosquitto to see them; docs/anpr.md)"
        )
        return None
    process = subprocess.Popen(
        [sys.executable, "-m", "ctplhub.cli.anpr", "run"],
        env={**os.environ, "CTPLHUB_DATABASE_URL": settings.database_url,
             "CTPLHUB_HOME": str(settings.home)},
    )  # fmt: skip
    consumer = CamerasConsumer(f"{broker.host}:{broker.port}", process)
    atexit.register(consumer.stop)
    console.print(
        f"roadside cameras: `ctplhub anpr run` consumes reads from the broker at "
        f"{consumer.address}; try `ctplhub anpr simulate --rate 20 --uninsured-share 0.1` "
        "and watch http://127.0.0.1:8000/staff/alerts (demo-police)"
    )
    return consumer
