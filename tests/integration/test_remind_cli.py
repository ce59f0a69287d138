"""``ctplhub remind`` (DESIGN §7, §8), through Typer's CliRunner on SQLite and PostgreSQL:
one pass decides and sends to a real SMTP server (aiosmtpd), a rerun sends nothing
twice, quiet hours defer, and dead letters are listed and re-driven."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app
from helpers import VIN, Clock, InsurerAccount, event
from notify_fixtures import SmtpServer, smtp_server

BEIJING = timezone(timedelta(hours=8))
DAY_BEFORE_7 = "2026-02-22T10:00:00+08:00"  # 7 days before the default cover ends
NIGHT_BEFORE_7 = "2026-02-22T22:00:00+08:00"
OWNER = {"plate": "苏E12345", "vin_last6": VIN[-6:]}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def env(database_url: str, home: Path, smtp: SmtpServer) -> dict[str, str]:
    return {
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
        "CTPLHUB_SMTP_HOST": "127.0.0.1",
        "CTPLHUB_SMTP_PORT": str(smtp.port),
    }


@pytest.fixture(autouse=True)
def subscribed(
    clock: Clock, picc: InsurerAccount, client: TestClient, container: Container
) -> None:
    clock.now = datetime(2026, 1, 1, 10, tzinfo=BEIJING)
    picc.api.report_event(event())
    answer = client.post(
        "/v1/subscriptions", json={**OWNER, "channel": "email", "address": "owner@example.com"}
    )
    assert answer.status_code == 201


def remind(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(app, ["remind", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])  # after any log lines


def test_a_pass_sends_what_is_due_once(env: dict[str, str], smtp: SmtpServer) -> None:
    first = remind(env, "run", "--at", DAY_BEFORE_7, "--json")
    again = remind(env, "run", "--at", DAY_BEFORE_7, "--json")

    assert first == {"due": 1, "sent": 1, "deferred": 0, "failed": 0}
    assert again == {"due": 0, "sent": 0, "deferred": 0, "failed": 0}
    [mail] = smtp.mailbox.messages
    assert mail["To"] == "owner@example.com"


def test_quiet_hours_defer_until_the_morning(env: dict[str, str], smtp: SmtpServer) -> None:
    night = remind(env, "run", "--at", NIGHT_BEFORE_7, "--json")
    assert night == {"due": 1, "sent": 0, "deferred": 1, "failed": 0}
    assert smtp.mailbox.messages == []
    morning = remind(env, "run", "--at", "2026-02-23T08:00:00+08:00", "--json")
    assert morning["sent"] == 1 and len(smtp.mailbox.messages) == 1


def test_dead_letters_are_listed_and_redriven(
    env: dict[str, str], smtp: SmtpServer, container: Container
) -> None:
    smtp.mailbox.refuse_with = "550 no such mailbox"  # permanent: a dead letter at once
    failed = remind(env, "run", "--at", DAY_BEFORE_7, "--json")
    assert failed["sent"] == 0 and failed["failed"] == 1

    [dead] = remind(env, "dead-letters", "--json")["dead_letters"]
    assert dead["address"] == "o***@example.com" and dead["kind"] == "before_7d"
    assert dead["plate"] == "苏E·12345" and dead["last_error"]

    smtp.mailbox.refuse_with = None
    assert remind(env, "redrive", str(dead["id"]), "--at", DAY_BEFORE_7, "--json") == {
        "redriven": 1
    }
    assert remind(env, "run", "--at", DAY_BEFORE_7, "--json")["sent"] == 1
    assert remind(env, "dead-letters", "--json") == {"dead_letters": []}
    assert remind(env, "redrive", "--all", "--json") == {"redriven": 0}


def test_a_bad_instant_and_bad_redrive_arguments_fail_cleanly(env: dict[str, str]) -> None:
    bad = CliRunner().invoke(app, ["remind", "run", "--at", "tomorrow", "--json"], env=env)
    assert bad.exit_code == 1
    assert json.loads(bad.stdout.strip().splitlines()[-1])["error"]["code"] == "invalid_instant"
    neither = CliRunner().invoke(app, ["remind", "redrive", "--json"], env=env)
    assert neither.exit_code == 1


def test_a_retry_waiting_for_its_time_counts_as_deferred(
    env: dict[str, str], smtp: SmtpServer
) -> None:
    smtp.mailbox.refuse_with = "451 try again later"  # temporary: retried after back-off
    failed = remind(env, "run", "--at", DAY_BEFORE_7, "--json")
    assert failed == {"due": 1, "sent": 0, "deferred": 0, "failed": 1}
    smtp.mailbox.refuse_with = None
    waiting = remind(env, "run", "--at", DAY_BEFORE_7, "--json")
    assert waiting == {"due": 1, "sent": 0, "deferred": 1, "failed": 0}
    later = remind(env, "run", "--at", "2026-02-22T12:00:00+08:00", "--json")
    assert later["sent"] == 1 and len(smtp.mailbox.messages) == 1
