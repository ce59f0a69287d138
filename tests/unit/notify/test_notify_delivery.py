"""The delivery pass against the outbox port's in-memory fake and a scripted channel:
what is recorded after each outcome, quiet hours, stopping, a database that goes away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ctplhub.notify.channels import DeliveryFailed
from ctplhub.notify.delivery import Delivery, DeliveryOptions
from ctplhub.notify.worker import running_clock
from ctplhub.services.reminder_ports import OutboxMessage
from notify_fixtures import DAYTIME, MemoryOutbox, outbox_message, with_id


class ScriptedChannel:
    """Answers from ``script`` (message id -> failures to raise, one per try)."""

    name = "webhook"

    def __init__(self, script: dict[int, list[DeliveryFailed]] | None = None) -> None:
        self.script = script or {}
        self.sent: list[int] = []
        self.closed = False
        self.delay_s = 0.0
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, message: OutboxMessage) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            failures = self.script.get(message.id, [])
            if failures:
                raise failures.pop(0)
            self.sent.append(message.id)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True


def messages(count: int) -> list[OutboxMessage]:
    return [with_id(outbox_message(channel="webhook"), i) for i in range(1, count + 1)]


def deliver(
    outbox: MemoryOutbox,
    channel: ScriptedChannel,
    at: datetime = DAYTIME,
    **options: object,
) -> object:
    async def go() -> object:
        delivery = Delivery(
            outbox,
            {"webhook": channel},
            options=DeliveryOptions(**options),  # type: ignore[arg-type]
        )
        try:
            return await delivery.run(lambda: at)
        finally:
            await delivery.aclose()

    return asyncio.run(go())


def test_everything_due_is_sent_once_and_marked() -> None:
    outbox, channel = MemoryOutbox(messages(500)), ScriptedChannel()
    channel.delay_s = 0.001
    tally = deliver(outbox, channel, concurrency=16, batch=50)
    assert sorted(channel.sent) == list(range(1, 501))
    assert outbox.states() == {"sent": 500}
    assert tally.sent == 500 and tally.failed == 0  # type: ignore[attr-defined]
    assert 1 < channel.most_in_flight <= 16
    assert channel.closed


def test_a_retryable_failure_is_scheduled_with_back_off() -> None:
    outbox = MemoryOutbox(messages(2))
    channel = ScriptedChannel({1: [DeliveryFailed("http_503", retryable=True)]})
    tally = deliver(outbox, channel)
    assert tally.sent == 1 and tally.failed == 1 and tally.dead_lettered == 0  # type: ignore[attr-defined]
    row = outbox.rows[1]
    assert row.state == "pending" and row.last_error == "http_503"
    wait = row.next_attempt_at - DAYTIME
    assert timedelta(minutes=1) <= wait <= timedelta(minutes=1, seconds=6)
    # Due again after the wait, not before: the next pass at that time sends it.
    deliver(outbox, channel, at=DAYTIME + timedelta(seconds=30))
    assert outbox.rows[1].state == "pending"
    deliver(outbox, channel, at=row.next_attempt_at)
    assert outbox.rows[1].state == "sent" and channel.sent.count(1) == 1


def test_a_permanent_failure_and_the_last_try_are_dead_letters() -> None:
    outbox = MemoryOutbox(messages(2))
    retry = DeliveryFailed("connect_failed", retryable=True)
    channel = ScriptedChannel({1: [DeliveryFailed("http_404", retryable=False)], 2: [retry] * 5})
    at = DAYTIME
    for _ in range(3):
        deliver(outbox, channel, at=at, max_attempts=3)
        at += timedelta(days=2)
    assert outbox.rows[1].state == "dead" and outbox.rows[1].last_error == "http_404"
    assert outbox.rows[2].state == "dead" and outbox.rows[2].attempts == 3
    assert channel.sent == []


def test_quiet_hours_defer_and_never_drop() -> None:
    night = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)  # 21:30 in Beijing
    outbox, channel = MemoryOutbox(messages(3)), ScriptedChannel()
    tally = deliver(outbox, channel, at=night)
    assert channel.sent == [] and tally.sent == 0  # type: ignore[attr-defined]
    assert outbox.states() == {"pending": 3}
    deliver(outbox, channel, at=datetime(2026, 12, 2, 0, 0, tzinfo=UTC))  # 08:00 Beijing
    assert outbox.states() == {"sent": 3}


def test_a_send_that_would_start_in_quiet_hours_is_given_back_until_eight() -> None:
    outbox, channel = MemoryOutbox(messages(3)), ScriptedChannel()
    times = iter([datetime(2026, 12, 1, 12, 59, 59, tzinfo=UTC)])  # claim at 20:59:59
    late = datetime(2026, 12, 1, 13, 0, 1, tzinfo=UTC)  # sends at 21:00:01

    async def go() -> object:
        delivery = Delivery(outbox, {"webhook": channel})
        try:
            return await delivery.run(lambda: next(times, late))
        finally:
            await delivery.aclose()

    tally = asyncio.run(go())
    assert tally.deferred == 3 and channel.sent == []  # type: ignore[attr-defined]
    eight = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    assert {r.next_attempt_at for r in outbox.rows.values()} == {eight}
    assert {r.attempts for r in outbox.rows.values()} == {0}  # the try is not counted


def test_stopping_finishes_sends_in_flight_and_gives_the_rest_back() -> None:
    outbox, channel = MemoryOutbox(messages(40)), ScriptedChannel()
    channel.delay_s = 0.05

    async def go() -> object:
        stop = asyncio.Event()
        delivery = Delivery(
            outbox, {"webhook": channel}, options=DeliveryOptions(concurrency=4, batch=40)
        )
        asyncio.get_running_loop().call_later(0.12, stop.set)
        try:
            return await delivery.run(lambda: DAYTIME, stop=stop)
        finally:
            await delivery.aclose()

    tally = asyncio.run(go())
    states = outbox.states()
    assert states["sent"] == len(channel.sent) == tally.sent  # type: ignore[attr-defined]
    assert 0 < tally.sent < 40  # type: ignore[attr-defined]
    assert states["pending"] == 40 - tally.sent == tally.deferred  # type: ignore[attr-defined]
    assert all(r.claimed_until is None for r in outbox.rows.values() if r.state == "pending")


def test_a_database_that_goes_away_ends_the_pass_with_its_error() -> None:
    outbox, channel = MemoryOutbox(messages(10)), ScriptedChannel()
    outbox.fail_calls.add("mark_sent")
    with pytest.raises(ConnectionError):
        deliver(outbox, channel, concurrency=2, batch=10)
    # Sent but not recorded: still claimed, so they come back when the lease ends.
    assert outbox.states() == {"pending": 10}
    outbox.fail_calls.clear()
    deliver(outbox, channel, at=DAYTIME + timedelta(minutes=6))
    assert outbox.states() == {"sent": 10}


def test_a_channel_nobody_configured_is_retried_not_dropped() -> None:
    outbox = MemoryOutbox([outbox_message(channel="sms")])
    tally = deliver(outbox, ScriptedChannel())
    assert tally.failed == 1  # type: ignore[attr-defined]
    assert outbox.rows[41].state == "pending"
    assert outbox.rows[41].last_error == "channel_not_configured"


def test_the_workers_clock_starts_at_at_and_runs_at_the_walls_pace() -> None:
    ticks = iter([100.0, 100.0, 160.5])
    clock = running_clock(DAYTIME, lambda: DAYTIME, lambda: next(ticks))
    assert clock() == DAYTIME
    assert clock() == DAYTIME + timedelta(seconds=60.5)
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    assert running_clock(None, lambda: wall, lambda: 0.0)() == wall
