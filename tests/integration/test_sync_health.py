"""Sync health (DESIGN §2.6, issue 10 item 1): the sync endpoint's added fields, the
per-insurer gauges in /metrics, and the regulator pages' HTML (no browser)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.domain.instants import BEIJING
from helpers import Clock, InsurerAccount, bearer_headers, event, signed_in

OLD_FIELDS = ["insurer_code", "status", "last_sync_at", "lag_s", "stale"]
OLD_FIELDS += ["accepted_24h", "rejected_24h"]
NEW_FIELDS = ["watermark", "accepted_total", "rejected_total", "events_24h", "late_24h"]
NEW_FIELDS += ["median_delay_s"]


def report_at(
    account: InsurerAccount, clock: Clock, at: datetime, delays_s: list[int], bad: int = 0
) -> None:
    clock.now = at
    lines = [
        event(
            insurer_code=account.code,
            policy_no=f"H-{at:%d%H%M}-{i}",
            occurred_at=(at - timedelta(seconds=d)).isoformat(),
        )
        for i, d in enumerate(delays_s)
    ]
    lines += [event(policy_no=f"BAD-{i}", vin="bad") for i in range(bad)]
    account.api.report_batch(lines)


def test_sync_keeps_its_fields_and_adds_totals_watermark_and_delay(
    picc: InsurerAccount, clock: Clock
) -> None:
    start = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    report_at(picc, clock, start, [60, 60, 60], bad=1)  # two days before "now"
    now = start + timedelta(days=2)
    report_at(picc, clock, now - timedelta(hours=1), [10, 20, 30, 100_000], bad=2)
    clock.now = now

    body = picc.api.sync("PICC")

    assert list(body) == OLD_FIELDS + NEW_FIELDS
    assert body["watermark"] == body["last_sync_at"]
    assert datetime.fromisoformat(body["watermark"]) == now - timedelta(hours=1)
    assert body["lag_s"] == 3600
    assert (body["accepted_24h"], body["rejected_24h"]) == (4, 2)
    assert (body["accepted_total"], body["rejected_total"]) == (7, 3)
    assert (body["events_24h"], body["late_24h"]) == (4, 1)
    assert body["median_delay_s"] == 20.0  # nearest rank 2 of 4


def test_a_quiet_insurer_has_zero_counts_and_null_delay(
    make_insurer: Callable[[str], InsurerAccount], client: TestClient, container: Container
) -> None:
    make_insurer("PINGAN")
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))

    body = client.get("/v1/insurers/PINGAN/sync", headers=regulator).json()

    assert (body["watermark"], body["stale"], body["median_delay_s"]) == (None, True, None)
    assert (body["accepted_total"], body["rejected_total"], body["late_24h"]) == (0, 0, 0)


def test_metrics_carry_per_insurer_gauges(
    picc: InsurerAccount, clock: Clock, client: TestClient
) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    report_at(picc, clock, at, [5, 90_000], bad=1)
    clock.now = at + timedelta(seconds=30)

    text = client.get("/metrics").text

    def gauge(name: str) -> float:
        found = re.search(rf'^{name}{{insurer="PICC"}} (\S+)$', text, re.MULTILINE)
        assert found, f"{name} missing from /metrics"
        return float(found.group(1))

    assert gauge("ctplhub_insurer_watermark_age_seconds") == pytest.approx(30, abs=1)
    assert gauge("ctplhub_insurer_stale") == 0
    assert (gauge("ctplhub_insurer_accepted_24h"), gauge("ctplhub_insurer_rejected_24h")) == (2, 1)
    assert gauge("ctplhub_insurer_accepted_total") == 2
    assert gauge("ctplhub_insurer_rejected_total") == 1
    assert gauge("ctplhub_insurer_late_24h") == 1


# --- the regulator pages ---------------------------------------------------------------


def test_the_insurers_page_shows_every_insurer_with_a_30_day_svg_chart(
    make_insurer: Callable[[str], InsurerAccount],
    picc: InsurerAccount,
    clock: Clock,
    web: TestClient,
    container: Container,
) -> None:
    make_insurer("PINGAN")
    now = datetime.now(UTC).replace(microsecond=0)
    report_at(picc, clock, now - timedelta(days=3), [60], bad=1)
    report_at(picc, clock, now, [60, 120])
    clock.now = now
    signed_in(web, container, "reg-1", "regulator")

    page = web.get("/staff/insurers")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert 'data-insurer="PICC" data-stale="false"' in html
    assert 'data-insurer="PINGAN" data-stale="true"' in html
    assert html.count('<svg class="chart"') == 2
    assert html.count('<g class="day"') == 60  # 30 days for each insurer
    today = now.astimezone(BEIJING).date().isoformat()
    earlier = (now - timedelta(days=3)).astimezone(BEIJING).date().isoformat()
    assert f"<title>{today}：接收 2，拒收 0</title>" in html  # PICC's bar of today
    assert f"<title>{earlier}：接收 1，拒收 1</title>" in html
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from another origin
    assert "保险公司数据同步状况" in html


def test_the_compliance_page_lists_insurers_and_downloads_the_csv(
    picc: InsurerAccount, clock: Clock, web: TestClient, container: Container
) -> None:
    report_at(picc, clock, datetime(2026, 11, 3, 4, tzinfo=UTC), [100, 200_000])
    signed_in(web, container, "reg-1", "regulator")

    page = web.get("/staff/compliance?month=2026-11")
    bad = web.get("/staff/compliance?month=November")
    download = web.get("/staff/compliance.csv?insurer=PICC&month=2026-11")

    assert page.status_code == 200
    assert 'data-insurer="PICC"' in page.text
    assert "50.0%" in page.text
    assert "/staff/compliance.csv?insurer=PICC&amp;month=2026-11" in page.text
    assert bad.status_code == 400
    assert download.status_code == 200
    assert download.text.splitlines()[-1].startswith("PICC,2026-11,total,2,1,0.5,")


def test_regulator_pages_refuse_other_roles_and_send_strangers_to_sign_in(
    web: TestClient, container: Container
) -> None:
    assert web.get("/staff/insurers").status_code == 303
    assert web.get("/staff/insurers").headers["location"] == "/staff/sign-in"

    signed_in(web, container, "officer-1", "police")
    for path in ("/staff/insurers", "/staff/compliance", "/staff/compliance.csv?insurer=PICC"):
        refused = web.get(path)
        assert refused.status_code == 403
        assert 'data-reason="role_not_allowed"' in refused.text


def test_the_staff_home_links_regulators_to_their_pages(
    web: TestClient, container: Container
) -> None:
    signed_in(web, container, "reg-1", "regulator")

    home = web.get("/staff").text

    assert 'href="/staff/insurers"' in home
    assert 'href="/staff/compliance"' in home
