"""A small renewal history built by hand for the statistics' tests (DESIGN §11): the
same figures are checked through the API (``test_stats_api.py``) and on the regulator
page (``test_stats_page.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.client import CtplHubClient
from ctplhub.domain.identifiers import with_vin_check_digit
from helpers import Clock, InsurerAccount, bearer_headers, event

BEIJING = timezone(timedelta(hours=8))
INGESTED = datetime(2026, 6, 1, 10, tzinfo=BEIJING)
NOW = datetime(2026, 6, 10, 10, tzinfo=BEIJING)  # past the refresh's settling time


def vin(n: int) -> str:
    return with_vin_check_digit(f"LSVAU{n:03d}0N2183294")


def day(text: str) -> str:
    return f"{text}T00:00:00+08:00"


def policy(number: int, vehicle: int, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return event(
        policy_no=f"PDAA{number:04d}",
        vin=vin(vehicle),
        plate=f"苏E·1{vehicle:04d}",
        coverage_start=day(start),
        coverage_end=day(end),
        occurred_at=day("2025-01-01"),
        **extra,
    )


@pytest.fixture
def cpic(container: Container, client: TestClient) -> Iterator[InsurerAccount]:
    new = container.insurers.add("CPIC", "中国太平洋财产保险", actor="test")
    api = CtplHubClient("http://testserver", new.key_id, new.secret, transport=client._transport)
    yield InsurerAccount(new.insurer_code, new.key_id, new.secret, api)
    api.close()


@pytest.fixture
def history(clock: Clock, picc: InsurerAccount, cpic: InsurerAccount) -> None:
    """V1 renewed at its end instant by CPIC; V2 renewed late; V3 never renewed (region
    320600); V4's PICC policy cancelled, its CPIC one never renewed (320600); V5
    surrendered on 2026-02-01; V7 ends 2026-07-01, not renewed yet; V8 ends then too,
    renewed early."""
    clock.now = INGESTED
    mine = [
        policy(1, 1, "2025-03-01", "2026-03-01"),
        policy(3, 2, "2025-03-01", "2026-03-01"),
        policy(4, 2, "2026-03-15", "2027-03-15"),
        policy(5, 3, "2025-04-01", "2026-04-01", region_code="320600"),
        policy(6, 4, "2025-03-01", "2026-03-01"),
        policy(6, 4, "2025-03-01", "2026-03-01", event_type="cancel", version=2),
        policy(8, 5, "2025-06-01", "2026-06-01"),
        policy(
            8,
            5,
            "2025-06-01",
            "2026-06-01",
            event_type="surrender",
            version=2,
            effective_at=day("2026-02-01"),
        ),
        policy(10, 7, "2025-07-01", "2026-07-01"),
    ]
    theirs = [
        policy(2, 1, "2026-03-01", "2027-03-01", insurer_code="CPIC"),
        policy(7, 4, "2025-05-01", "2026-05-01", insurer_code="CPIC", region_code="320600"),
        policy(11, 8, "2025-07-01", "2026-07-01", insurer_code="CPIC"),
        policy(12, 8, "2026-07-01", "2027-07-01", insurer_code="CPIC"),
    ]
    for account, events in ((picc, mine), (cpic, theirs)):
        answer = account.api.report_batch(events)
        assert answer["rejected"] == 0, answer
    clock.now = NOW


@pytest.fixture
def regulator(container: Container) -> dict[str, str]:
    return bearer_headers(container.users.add("csrc-01", "regulator"))
