"""Deciding reminders and the outbox (DESIGN §7; issue 9), on SQLite and PostgreSQL:
what is due is written once (a rerun writes nothing twice), only the most urgent rule,
quiet hours defer, a renewal cancels what was queued, an early cancel alerts, leases
return a killed worker's claims, dead letters are listed and re-driven, and two
claimers never get the same row."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.store.tables import reminders
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

BEIJING = timezone(timedelta(hours=8))
END = datetime(2026, 3, 1, tzinfo=BEIJING)  # the default event's cover ends here
OWNER = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
LEASE = timedelta(minutes=5)


def bj(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(autouse=True)
def early(clock: Clock) -> None:
    clock.now = bj(1, 1, 10)


@pytest.fixture
def covered(picc: InsurerAccount) -> None:
    picc.api.report_event(event())


def subscribe(client: TestClient, address: str = "owner@example.com", **extra: Any) -> Any:
    answer = client.post(
        "/v1/subscriptions", json={**OWNER, "channel": "email", "address": address, **extra}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def states(container: Container) -> list[tuple[str, str]]:
    with container.engine.connect() as conn:
        rows = conn.execute(select(reminders.c.rule, reminders.c.state).order_by(reminders.c.id))
        return [(r.rule, r.state) for r in rows]


@pytest.mark.usefixtures("covered")
def test_a_due_reminder_is_written_once_and_claimed_with_what_a_template_needs(
    client: TestClient, container: Container
) -> None:
    made = subscribe(client)
    at = END - timedelta(days=30) + timedelta(hours=10)

    first = container.reminders.decide(at)
    again = container.reminders.decide(at)

    assert (first.queued, first.due, first.deferred) == (1, 1, 0)
    assert (again.queued, again.due) == (0, 1)
    assert states(container) == [("before_30d", "pending")]
    [message] = container.outbox.claim(at, 10, "w1", LEASE)
    assert message.address == "owner@example.com"
    assert message.kind == "before_30d" and message.rule_days == 30
    assert message.plate == "苏E·12345" and message.vin_masked == VIN[:11] + "******"
    assert message.covered_until == END and message.insurer_code == "PICC"
    assert message.insurer_name == "中国人民财产保险"
    assert message.policy_no_masked.startswith("…") and message.attempts == 1
    assert message.language == "zh-CN" and message.channel == "email"
    assert message.unsubscribe_token == made["unsubscribe_token"]
    assert message.unsubscribe_url.endswith(
        f"/v1/subscriptions/{made['subscription_id']}/unsubscribe?token={made['unsubscribe_token']}"
    )
    container.outbox.mark_sent(message.id, at)
    assert container.reminders.decide(at + timedelta(days=1)).queued == 0
    assert states(container) == [("before_30d", "sent")]
    counts = container.outbox.counts(at)
    assert (counts.sent, counts.pending, counts.due) == (1, 0, 0)


@pytest.mark.usefixtures("covered")
def test_only_the_most_urgent_rule_is_sent_and_older_ones_are_skipped(
    client: TestClient, container: Container
) -> None:
    subscribe(client)
    container.reminders.decide(END - timedelta(days=20))  # before_30d queued, not sent
    tally = container.reminders.decide(END - timedelta(days=5) + timedelta(hours=10))

    assert tally.queued == 1 and tally.skipped == 1
    assert sorted(states(container)) == [("before_30d", "skipped"), ("before_7d", "pending")]
    claimed = container.outbox.claim(END - timedelta(days=5) + timedelta(hours=10), 10, "w", LEASE)
    assert [m.kind for m in claimed] == ["before_7d"]


@pytest.mark.usefixtures("covered")
def test_a_first_run_late_writes_the_skipped_rules_so_they_never_go_later(
    client: TestClient, container: Container
) -> None:
    subscribe(client)
    container.reminders.decide(END - timedelta(hours=10))
    assert sorted(states(container)) == [
        ("before_1d", "pending"),
        ("before_30d", "skipped"),
        ("before_7d", "skipped"),
    ]


@pytest.mark.usefixtures("covered")
def test_quiet_hours_defer_and_never_drop(client: TestClient, container: Container) -> None:
    subscribe(client)
    night = END - timedelta(days=7) + timedelta(hours=22)  # 22:00 Beijing

    tally = container.reminders.decide(night)

    assert (tally.queued, tally.due, tally.deferred) == (1, 1, 1)
    assert container.outbox.claim(night, 10, "w", LEASE) == []
    assert container.outbox.claim(night + timedelta(hours=9, minutes=59), 10, "w", LEASE) == []
    morning = night + timedelta(hours=10)  # 08:00 the next day
    assert [m.kind for m in container.outbox.claim(morning, 10, "w", LEASE)] == ["before_7d"]


@pytest.mark.usefixtures("covered")
def test_a_renewal_after_a_reminder_was_queued_cancels_it(
    client: TestClient, container: Container, picc: InsurerAccount, clock: Clock
) -> None:
    subscribe(client)
    at = END - timedelta(days=7) + timedelta(hours=10)
    assert container.reminders.decide(at).queued == 1
    clock.now = at
    picc.api.report_event(
        event(
            policy_no="PDAA2026320500000002",
            event_type="renew",
            prior_policy_no="PDAA2025320500000001",
            occurred_at="2026-02-22T10:00:00+08:00",
            coverage_start="2026-03-01T00:00:00+08:00",
            coverage_end="2027-03-01T00:00:00+08:00",
        )
    )

    assert container.outbox.claim(at, 10, "w", LEASE) == []
    assert dict(states(container))["before_7d"] == "cancelled"
    assert container.reminders.decide(END - timedelta(hours=10)).queued == 0


@pytest.mark.usefixtures("covered")
def test_a_lapse_reminder_and_nothing_before_once_lapsed(
    client: TestClient, container: Container
) -> None:
    subscribe(client)
    container.reminders.decide(END - timedelta(hours=10))  # before_1d queued at 14:00
    lapsed = END + timedelta(days=1, hours=10)
    tally = container.reminders.decide(lapsed)
    assert tally.queued == 1
    claimed = container.outbox.claim(lapsed, 10, "w", LEASE)
    assert [m.kind for m in claimed] == ["lapsed_1d"]
    assert dict(states(container))["before_1d"] == "skipped"


def test_a_cancel_soon_after_issue_alerts_the_owner_and_is_listed_for_regulators(
    client: TestClient, container: Container, picc: InsurerAccount, clock: Clock
) -> None:
    issued = {
        "policy_no": "PGHOST0001",
        "occurred_at": "2026-01-10T10:00:00+08:00",
        "coverage_start": "2026-01-11T00:00:00+08:00",
        "coverage_end": "2027-01-11T00:00:00+08:00",
    }
    clock.now = bj(1, 10, 11)
    picc.api.report_event(event(**issued))
    subscribe(client, language="en")
    clock.now = bj(1, 25, 9)
    picc.api.report_event(
        event(
            **{**issued, "occurred_at": "2026-01-25T09:00:00+08:00"}, version=2, event_type="cancel"
        )
    )
    at = bj(1, 25, 12)

    tally = container.reminders.decide(at)

    assert tally.alerts == 1
    [alert] = container.outbox.claim(at, 10, "w", LEASE)
    assert alert.kind == "cancelled" and alert.rule_days == 0 and alert.language == "en"
    assert alert.covered_until == bj(1, 11)
    assert container.reminders.decide(at + timedelta(hours=1)).alerts == 0
    token = container.users.add("regulator-1", "regulator")
    listed = client.get(
        "/v1/regulator/ghost-cover",
        params={"from": "2026-01-01T00:00:00+08:00", "to": "2026-02-01T00:00:00+08:00"},
        headers=bearer_headers(token),
    ).json()["items"]
    assert listed == [
        {
            "insurer_code": "PICC",
            "policy_no": "PGHOST0001",
            "event_type": "cancel",
            "issued_at": "2026-01-10T10:00:00+08:00",
            "closed_at": "2026-01-25T09:00:00+08:00",
            "coverage_start": "2026-01-11T00:00:00+08:00",
            "covered_until": "2026-01-11T00:00:00+08:00",
            "days_after_issue": 14,
        }
    ]


def test_a_late_surrender_is_no_ghost(
    client: TestClient, container: Container, picc: InsurerAccount, clock: Clock
) -> None:
    clock.now = bj(1, 1, 10)
    picc.api.report_event(event())  # issued 2025-02-20
    subscribe(client)
    clock.now = bj(1, 20, 9)
    picc.api.report_event(
        event(
            version=2,
            event_type="surrender",
            occurred_at="2026-01-20T09:00:00+08:00",
            effective_at="2026-01-20T09:00:00+08:00",
        )
    )
    assert container.reminders.decide(bj(1, 20, 12)).alerts == 0


@pytest.mark.usefixtures("covered")
def test_unsubscribing_cancels_what_is_queued(client: TestClient, container: Container) -> None:
    made = subscribe(client)
    at = END - timedelta(days=7) + timedelta(hours=10)
    container.reminders.decide(at)
    url = f"/v1/subscriptions/{made['subscription_id']}"
    assert client.delete(url, params={"token": made["unsubscribe_token"]}).status_code == 204
    assert dict(states(container))["before_7d"] == "cancelled"
    assert container.reminders.decide(at).queued == 0


@pytest.mark.usefixtures("covered")
def test_a_killed_workers_claims_come_back_after_the_lease(
    client: TestClient, container: Container
) -> None:
    subscribe(client)
    at = END - timedelta(days=7) + timedelta(hours=10)
    container.reminders.decide(at)
    [first] = container.outbox.claim(at, 10, "dies", LEASE)
    assert container.outbox.claim(at + LEASE - timedelta(seconds=1), 10, "w2", LEASE) == []
    [again] = container.outbox.claim(at + LEASE, 10, "w2", LEASE)
    assert again.id == first.id and again.attempts == 2


@pytest.mark.usefixtures("covered")
def test_failures_retry_then_dead_letter_and_an_operator_redrives(
    client: TestClient, container: Container
) -> None:
    subscribe(client)
    at = END - timedelta(days=7) + timedelta(hours=10)
    container.reminders.decide(at)
    outbox = container.outbox
    [m] = outbox.claim(at, 10, "w", LEASE)
    outbox.mark_failed(m.id, at, "smtp_unavailable", at + timedelta(minutes=1))
    assert outbox.claim(at, 10, "w", LEASE) == []
    [m] = outbox.claim(at + timedelta(minutes=1), 10, "w", LEASE)
    assert m.attempts == 2
    outbox.defer(m.id, at + timedelta(minutes=2))  # given back: the try does not count
    [m] = outbox.claim(at + timedelta(minutes=2), 10, "w", LEASE)
    assert m.attempts == 2
    outbox.mark_failed(m.id, at, "smtp_unavailable", None)

    [dead] = outbox.dead_letters()
    assert dead.id == m.id and dead.address_masked == "o***@example.com"
    assert dead.last_error == "smtp_unavailable" and dead.plate == "苏E·12345"
    assert outbox.counts(at).dead == 1
    assert outbox.redrive(None, at + timedelta(hours=1)) == 1
    [m] = outbox.claim(at + timedelta(hours=1), 10, "w", LEASE)
    assert m.attempts == 1
    assert outbox.dead_letters() == []


@pytest.mark.usefixtures("covered")
def test_two_claimers_at_once_never_get_the_same_row(
    client: TestClient, container: Container
) -> None:
    n = 60
    for i in range(n):
        subscribe(client, address=f"owner{i}@example.com")
    at = END - timedelta(days=7) + timedelta(hours=10)
    assert container.reminders.decide(at).queued == n
    got: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claimer(k: int) -> None:
        start.wait()
        while batch := container.outbox.claim(at, 3, f"w{k}", LEASE):
            got[k].extend(m.id for m in batch)

    threads = [threading.Thread(target=claimer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    every = Counter(got[0] + got[1])
    assert len(every) == n and set(every.values()) == {1}
    if container.engine.dialect.name == "postgresql":
        assert got[0] and got[1]  # both took part: SKIP LOCKED, not one waiting for all


def test_at_uses_the_runs_clock_not_the_wall_clock(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    picc.api.report_event(event())
    subscribe(client)
    far = datetime(2026, 2, 22, 2, 0, tzinfo=UTC)
    assert container.reminders.decide(far).queued == 1
