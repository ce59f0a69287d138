"""The regulator's pages in a real Chromium (issue 10 items 1 and 3): every insurer's
sync health at a glance with its 30-day chart, the month's late reports and the CSV
report, and a police officer refused at the door.

The server is configured as ``ctplhub demo`` serves it (plain http on 127.0.0.1, so the
cookie is not ``Secure``).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from playwright.sync_api import Page

from ctplhub.bootstrap import Container
from ctplhub.domain.instants import BEIJING
from helpers import STAFF_PASSWORD, VIN_B, Clock, InsurerAccount, event, staff_sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/ctplhub-staff-insurers.png"


def test_regulator_sees_sync_health_charts_and_late_reports(
    live_server: str,
    desk: Page,
    container: Container,
    picc: InsurerAccount,
    clock: Clock,
) -> None:
    now = clock.now.replace(microsecond=0)
    start = now - timedelta(days=100)
    # One event on time and one three days late (DESIGN §10: late after 24 h).
    picc.api.report_event(
        event(
            coverage_start=start.isoformat(),
            coverage_end=(start + timedelta(days=365)).isoformat(),
            occurred_at=(now - timedelta(hours=1)).isoformat(),
        )
    )
    picc.api.report_event(
        event(
            policy_no="PDAA2026LATE",
            plate="苏E54321",
            vin=VIN_B,
            coverage_start=start.isoformat(),
            coverage_end=(start + timedelta(days=365)).isoformat(),
            occurred_at=(now - timedelta(days=3)).isoformat(),
        )
    )
    container.users.add("reg-1", "regulator")
    container.users.set_password("reg-1", STAFF_PASSWORD)
    staff_sign_in(desk, live_server, "reg-1", "/staff/insurers")

    desk.goto(live_server + "/staff/insurers")
    row = desk.locator("#insurers tr[data-insurer='PICC']")
    assert row.get_attribute("data-stale") == "false"
    assert "2 / 0" in row.inner_text()  # accepted / rejected in 24 h
    chart = desk.locator("#insurers svg.chart").first
    assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-label")
    assert chart.locator("rect").count() >= 1  # today's accepted bar is drawn
    desk.screenshot(path=SCREENSHOT, full_page=True)

    desk.get_by_role("link", name="查看按月迟报统计").click()
    desk.wait_for_url(live_server + "/staff/compliance*")
    month = now.astimezone(BEIJING).strftime("%Y-%m")
    desk.locator("#month").fill(month)
    desk.get_by_role("button", name="查看").click()
    desk.wait_for_load_state()
    cells = desk.locator("#compliance tr[data-insurer='PICC'] td").all_inner_texts()
    assert cells[1:4] == ["2", "1", "50.0%"]

    with desk.expect_download() as download:
        desk.locator("#compliance tr[data-insurer='PICC'] a").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 2 and any("PICC" in cell for cell in rows[1])


def test_a_police_officer_is_refused_the_regulator_pages(
    live_server: str, desk: Page, container: Container
) -> None:
    container.users.add("officer-2", "police")
    container.users.set_password("officer-2", STAFF_PASSWORD)
    staff_sign_in(desk, live_server, "officer-2", "/staff/insurers")
    answer = desk.goto(live_server + "/staff/insurers")
    assert answer is not None and answer.status == 403
    assert desk.locator("#insurers").count() == 0
