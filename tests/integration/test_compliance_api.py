"""Late reports (DESIGN §10) over real HTTP: month boundaries in Beijing time,
nearest-rank percentiles, the empty month, who may read, and the monthly CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.services.compliance import Compliance
from ctplhub.store.repositories.insurer_health import SqlInsurerHealth
from helpers import Clock, InsurerAccount, bearer_headers, event

FIELDS = {"insurer_code", "month", "events", "late", "late_share", "median_delay_s", "p95_delay_s"}
_serial = iter(range(1, 1_000_000))


def received(
    account: InsurerAccount, clock: Clock, at: datetime, delay: timedelta, **extra: Any
) -> None:
    """Report one event received at ``at`` that occurred ``delay`` before it."""
    clock.now = at
    occurred = (at - delay).astimezone(UTC).isoformat()
    account.api.report_event(
        event(
            insurer_code=account.code,
            policy_no=f"LATE-{next(_serial)}",
            occurred_at=occurred,
            **extra,
        )
    )


def compliance(account: InsurerAccount, month: str, code: str = "") -> dict[str, Any]:
    path = f"/v1/insurers/{code or account.code}/compliance?month={month}"
    answer = account.api.request("GET", path)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def at_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_event_counts_in_the_beijing_month_it_was_received(
    picc: InsurerAccount, clock: Clock
) -> None:
    # 2026-10-31 23:59:59 Beijing: October.
    received(picc, clock, at_utc("2026-10-31T15:59:59"), timedelta(hours=1))
    # 2026-11-01 00:00:00 Beijing: November, two days late.
    received(picc, clock, at_utc("2026-10-31T16:00:00"), timedelta(days=2))
    # 2026-11-30 23:59:59 Beijing: still November.
    received(picc, clock, at_utc("2026-11-30T15:59:59"), timedelta(seconds=10))
    # 2026-12-01 00:00:00 Beijing: December.
    received(picc, clock, at_utc("2026-11-30T16:00:00"), timedelta(seconds=5))

    november = compliance(picc, "2026-11")

    assert november.keys() == FIELDS
    assert november == {
        "insurer_code": "PICC",
        "month": "2026-11",
        "events": 2,
        "late": 1,
        "late_share": 0.5,
        "median_delay_s": 10.0,  # rank ceil(0.5 * 2) = 1
        "p95_delay_s": 172_800.0,  # rank ceil(0.95 * 2) = 2
    }
    assert compliance(picc, "2026-10")["events"] == 1
    assert compliance(picc, "2026-12")["median_delay_s"] == 5.0


def test_percentiles_are_nearest_rank_and_late_means_more_than_a_day(
    picc: InsurerAccount, clock: Clock
) -> None:
    start = at_utc("2026-11-10T02:00:00")
    delays = [100 * i for i in range(1, 19)] + [86_400, 86_401]  # 20 events
    for i, delay in enumerate(delays):
        received(picc, clock, start + timedelta(minutes=i), timedelta(seconds=delay))

    month = compliance(picc, "2026-11")

    assert (month["events"], month["late"]) == (20, 1)  # exactly 24 h is not late
    assert month["late_share"] == 0.05
    assert month["median_delay_s"] == 1000.0  # rank 10 of 20
    assert month["p95_delay_s"] == 86_400.0  # rank 19 of 20


def test_an_empty_month_has_share_0_and_null_delays(picc: InsurerAccount) -> None:
    assert compliance(picc, "2026-01") == {
        "insurer_code": "PICC",
        "month": "2026-01",
        "events": 0,
        "late": 0,
        "late_share": 0,
        "median_delay_s": None,
        "p95_delay_s": None,
    }


def test_late_after_is_a_setting(picc: InsurerAccount, clock: Clock, container: Container) -> None:
    received(picc, clock, at_utc("2026-11-10T02:00:00"), timedelta(hours=2))
    hourly = Compliance(SqlInsurerHealth(container.engine), late_after_s=3600)

    assert container.settings.late_after_s == 86_400
    assert container.compliance.month("PICC", "2026-11").stats.late == 0
    assert hourly.month("PICC", "2026-11").stats.late == 1


def test_a_regulator_reads_any_insurer_police_and_other_insurers_may_not(
    make_insurer: Callable[[str], InsurerAccount],
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
    police_token: str,
) -> None:
    pingan = make_insurer("PINGAN")
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))

    as_regulator = client.get("/v1/insurers/picc/compliance?month=2026-11", headers=regulator)
    as_police = client.get(
        "/v1/insurers/PICC/compliance?month=2026-11", headers=bearer_headers(police_token)
    )
    unknown = client.get("/v1/insurers/NOBODY/compliance?month=2026-11", headers=regulator)

    assert as_regulator.status_code == 200
    assert as_regulator.json()["insurer_code"] == "PICC"
    assert (as_police.status_code, as_police.json()["error"]["code"]) == (403, "role_not_allowed")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_insurer")
    mismatch = pingan.api.request("GET", "/v1/insurers/PICC/compliance?month=2026-11")
    assert (mismatch.status_code, mismatch.json()["error"]["code"]) == (403, "insurer_mismatch")


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-11", "", "1999-12", "2026-11-01"])
def test_a_bad_month_is_400(picc: InsurerAccount, month: str) -> None:
    answer = picc.api.request("GET", f"/v1/insurers/PICC/compliance?month={month}")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "validation_failed"


def test_the_monthly_csv_has_a_row_per_day_and_the_total(
    picc: InsurerAccount, clock: Clock, client: TestClient, container: Container
) -> None:
    received(picc, clock, at_utc("2026-11-02T01:00:00"), timedelta(days=3))
    received(picc, clock, at_utc("2026-11-02T02:00:00"), timedelta(seconds=60))
    received(picc, clock, at_utc("2026-11-05T03:00:00"), timedelta(seconds=30))
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))

    signed = picc.api.request("GET", "/v1/insurers/PICC/compliance.csv?month=2026-11")
    as_regulator = client.get("/v1/insurers/PICC/compliance.csv?month=2026-11", headers=regulator)

    assert signed.status_code == 200, signed.text
    assert signed.headers["content-type"].startswith("text/csv")
    assert "compliance-PICC-2026-11.csv" in signed.headers["content-disposition"]
    assert as_regulator.text == signed.text
    rows = list(csv.DictReader(io.StringIO(signed.text)))
    assert [r["day"] for r in rows] == ["2026-11-02", "2026-11-05", "total"]
    assert [(r["events"], r["late"]) for r in rows] == [("2", "1"), ("1", "0"), ("3", "1")]
    assert rows[-1]["median_delay_s"] == "60.0"
    assert rows[-1]["p95_delay_s"] == "259200.0"
