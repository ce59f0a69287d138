"""Delivery through real servers (issue 9, "Channels" and "Faults"): an aiosmtpd SMTP
server, a local HTTP receiver for webhooks and for the SMS gateway. They refuse, fail,
stall and come back; what is due is delivered once, on both database engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ctplhub.bootstrap import Container, build_container
from ctplhub.config import Settings
from ctplhub.notify import webhook_signing
from ctplhub.services.reminder_ports import DeliveryTally
from ctplhub.store.tables import reminders
from helpers import Clock
from notify_fixtures import DAYTIME, HttpReceiver, SmtpServer, free_port, http_receiver
from outbox_rows import fill_outbox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def wired(settings: Settings, smtp: SmtpServer, gateway: HttpReceiver) -> Iterator[Container]:
    ready = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_from": "CTPL Hub <reminders@ctplhub.example>",
            "sms_gateway_url": gateway.url,
            "public_url": "https://ctplhub.example",
            "delivery_timeout_s": 1.0,
            "delivery_concurrency": 8,
            "delivery_batch": 16,
        }
    )
    container = build_container(ready, clock=Clock(DAYTIME))
    yield container
    container.close()


def deliver(container: Container, at: datetime) -> DeliveryTally:
    return container.reminder_delivery()(at)


def states(container: Container) -> dict[int, tuple[str, int, str | None]]:
    with container.engine.connect() as conn:
        rows = conn.execute(
            select(reminders.c.id, reminders.c.state, reminders.c.attempts, reminders.c.last_error)
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def fill(
    container: Container, home: Path, addresses: list[str], channel: str, **kw: str
) -> list[int]:
    return fill_outbox(container.engine, home, addresses, channel=channel, due_at=DAYTIME, **kw)


def test_email_in_html_and_text_with_the_unsubscribe_link(
    wired: Container, home: Path, smtp: SmtpServer
) -> None:
    ids = fill(wired, home, [f"owner{i}@example.cn" for i in range(12)], "email")
    fill(wired, home, ["english@example.com"], "email", language="en")
    tally = deliver(wired, DAYTIME)
    assert tally == DeliveryTally(sent=13, failed=0, deferred=0, dead_lettered=0)
    assert sorted(smtp.mailbox.ids()) == sorted(str(i) for i in [*ids, ids[-1] + 1])
    by_id = {m["X-CTPL-Message-Id"]: m for m in smtp.mailbox.messages}
    first = by_id[str(ids[0])]
    assert first["To"] == "owner0@example.cn"
    assert first["Message-ID"] == f"<reminder-{ids[0]}@ctplhub.example>"
    assert first.get_content_type() == "multipart/alternative"
    link = first["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://ctplhub.example/v1/subscriptions/")
    assert "/unsubscribe?token=" in link
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = first.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert link in text and link in html
    assert "交强险" in str(first["Subject"])
    english = by_id[str(ids[-1] + 1)]
    assert str(english["Subject"]).startswith("CTPL renewal reminder")
    assert {s for s, _, _ in states(wired).values()} == {"sent"}
    assert deliver(wired, DAYTIME + timedelta(hours=1)).sent == 0  # nothing twice


def test_smtp_down_then_back_delivers_everything_once(
    wired: Container, home: Path, smtp: SmtpServer
) -> None:
    ids = fill(wired, home, [f"o{i}@example.cn" for i in range(10)], "email")
    smtp.stop()
    down = deliver(wired, DAYTIME)
    assert down == DeliveryTally(sent=0, failed=10, deferred=0, dead_lettered=0)
    assert {e for _, _, e in states(wired).values()} == {"smtp_unavailable"}
    # Not due again before its back-off (1 min + jitter) ...
    assert deliver(wired, DAYTIME + timedelta(seconds=50)) == DeliveryTally(0, 0, 0, 0)
    smtp.start()  # ... and the relay is back on the same port
    back = deliver(wired, DAYTIME + timedelta(minutes=2))
    assert back.sent == 10
    assert sorted(smtp.mailbox.ids()) == sorted(map(str, ids))  # each exactly once
    assert {(s, a) for s, a, _ in states(wired).values()} == {("sent", 2)}


def test_a_refused_mailbox_is_a_dead_letter_and_a_busy_one_is_retried(
    wired: Container, home: Path, smtp: SmtpServer
) -> None:
    (refused,) = fill(wired, home, ["nobody@example.cn"], "email")
    smtp.mailbox.refuse_with = "550 5.1.1 no such mailbox"
    assert deliver(wired, DAYTIME).dead_lettered == 1
    assert states(wired)[refused] == ("dead", 1, "smtp_recipient_refused")
    (busy,) = fill(wired, home, ["busy@example.cn"], "email")
    smtp.mailbox.refuse_with = "451 4.3.0 try again later"
    tally = deliver(wired, DAYTIME)
    assert tally.failed == 1 and tally.dead_lettered == 0
    assert states(wired)[busy] == ("pending", 1, "smtp_recipient_refused")
    dead = wired.reminder_outbox().dead_letters()
    assert [d.id for d in dead] == [refused] and dead[0].address_masked == "n***@example.cn"


def test_webhook_is_signed_and_500_then_200_is_delivered_once(wired: Container, home: Path) -> None:
    with http_receiver() as hook:
        ids = fill(wired, home, [hook.url] * 1, "webhook")
        ids += fill(wired, home, [hook.url + "?n=2", hook.url + "?n=3"], "webhook")
        hook.behaviour.statuses = [500, 500, 500]
        assert deliver(wired, DAYTIME).failed == 3
        assert {e for _, _, e in states(wired).values()} == {"http_500"}
        assert deliver(wired, DAYTIME + timedelta(minutes=2)).sent == 3
        assert sorted(hook.acknowledged_ids()) == sorted(map(str, ids))
        assert len(hook.received) == 6
        for received in hook.received:
            body = received.body
            sid = int(received.json()["subscription_id"])
            secret = webhook_signing.webhook_secret(wired.webhook_key, sid)
            assert webhook_signing.verify(
                secret,
                timestamp=received.headers["X-CTPL-Webhook-Timestamp"],
                message_id=received.headers["X-CTPL-Message-Id"],
                body=body,
                header=received.headers["X-CTPL-Webhook-Signature"],
                now_s=time.time(),
            )
            assert received.headers["Content-Type"] == "application/json"
            assert received.json()["id"] == received.headers["X-CTPL-Message-Id"]
            assert "/unsubscribe?token=" in received.json()["unsubscribe_url"]
        # The repeat of a message carries the same body (and id) as its first try.
        first = {r.headers["X-CTPL-Message-Id"]: r.body for r in hook.received[:3]}
        again = {r.headers["X-CTPL-Message-Id"]: r.body for r in hook.received[3:]}
        assert first == again


def test_a_slow_receiver_times_out_and_is_retried_without_holding_up_the_rest(
    wired: Container, home: Path
) -> None:
    with http_receiver() as slow, http_receiver() as fast:
        slow.behaviour.delay_s = 1.5  # longer than the 1 s send timeout
        (late,) = fill(wired, home, [slow.url], "webhook")
        quick = fill(wired, home, [fast.url + f"?n={i}" for i in range(20)], "webhook")
        started = time.monotonic()
        tally = deliver(wired, DAYTIME)
        assert time.monotonic() - started < 4.0  # not 1 s per message in turn
        assert tally.sent == 20 and tally.failed == 1
        assert states(wired)[late] == ("pending", 1, "timeout")
        assert sorted(fast.acknowledged_ids()) == sorted(map(str, quick))
        slow.behaviour.delay_s = 0.2  # slow, but within the timeout
        assert deliver(wired, DAYTIME + timedelta(minutes=2)).sent == 1
        assert states(wired)[late][0] == "sent"


def test_a_webhook_that_refuses_for_good_is_a_dead_letter(wired: Container, home: Path) -> None:
    with http_receiver() as hook:
        (gone,) = fill(wired, home, [hook.url], "webhook")
        hook.behaviour.default = 410
        assert deliver(wired, DAYTIME).dead_lettered == 1
        assert states(wired)[gone] == ("dead", 1, "http_410")
        hook.behaviour.default = 200
        outbox = wired.reminder_outbox()
        assert outbox.redrive([gone], DAYTIME + timedelta(hours=1)) == 1
        assert deliver(wired, DAYTIME + timedelta(hours=1)).sent == 1


def test_a_webhook_nobody_listens_on_is_retried(wired: Container, home: Path) -> None:
    (nobody,) = fill(wired, home, [f"http://127.0.0.1:{free_port()}/hook"], "webhook")
    assert deliver(wired, DAYTIME).failed == 1
    assert states(wired)[nobody] == ("pending", 1, "connect_failed")


def test_sms_goes_to_the_gateway_with_its_id(
    wired: Container, home: Path, gateway: HttpReceiver
) -> None:
    ids = fill(wired, home, ["+8613812345678", "+8613912345678"], "sms")
    gateway.behaviour.statuses = [503]
    assert deliver(wired, DAYTIME).sent == 1
    assert deliver(wired, DAYTIME + timedelta(minutes=2)).sent == 1
    bodies = {r.json()["id"]: r.json() for r in gateway.received if r.status == 200}
    assert sorted(bodies) == sorted(map(str, ids))
    body = bodies[str(ids[0])]
    assert body["to"] == "+8613812345678"
    assert "/unsubscribe?token=" in body["text"] and "交强险" in body["text"]
    assert gateway.received[0].headers["X-CTPL-Message-Id"] in bodies


def test_sms_without_a_gateway_waits_for_one(settings: Settings, home: Path) -> None:
    container = build_container(settings.model_copy(update={"sms_gateway_url": None}))
    try:
        (waiting,) = fill(container, home, ["+8613812345678"], "sms")
        assert deliver(container, DAYTIME).failed == 1
        assert states(container)[waiting] == ("pending", 1, "channel_not_configured")
    finally:
        container.close()


def test_quiet_hours_defer_and_eight_oclock_sends(
    wired: Container, home: Path, smtp: SmtpServer
) -> None:
    fill(wired, home, ["night@example.cn"], "email")
    night = datetime.fromisoformat("2026-12-01T22:30:00+08:00")
    assert deliver(wired, night) == DeliveryTally(0, 0, 0, 0)
    assert smtp.mailbox.messages == []
    assert deliver(wired, datetime.fromisoformat("2026-12-02T08:00:00+08:00")).sent == 1
