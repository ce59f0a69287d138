"""The regulator's lapse forecast page in a real Chromium (issue 12 item 6): the expiring
vehicles by region as an SVG bar chart and a table, a shorter window, the CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from ctplhub.bootstrap import Container
from ctplhub.services.demo_fleet import DEMO_INSURERS
from ctplhub.services.risk_history import synthetic_vehicles
from forecast_fixtures import store
from helpers import STAFF_PASSWORD, Clock, InsurerAccount, staff_sign_in

pytestmark = pytest.mark.browser


def test_regulator_sees_expected_lapses_by_region(
    live_server: str,
    desk: Page,
    container: Container,
    make_insurer: Callable[[str], InsurerAccount],
    clock: Clock,
) -> None:
    insurers = {code: make_insurer(code) for code, _ in DEMO_INSURERS}
    fleet = list(synthetic_vehicles(8, now=clock.now, seed=4, ends_from=2, ends_until=28))
    store(fleet, insurers, container)
    container.users.add("reg-1", "regulator")
    container.users.set_password("reg-1", STAFF_PASSWORD)
    staff_sign_in(desk, live_server, "reg-1", "/staff/forecast")
    desk.get_by_role("link", name="脱保风险预测").click()
    desk.wait_for_url(live_server + "/staff/forecast*")

    assert desk.locator("h1").inner_text() == "脱保风险预测"
    regions = {v.history.region_code for v in fleet}
    rows = desk.locator("#forecast tr[data-region]")
    assert rows.count() == len(regions)
    assert {rows.nth(i).get_attribute("data-region") for i in range(rows.count())} == regions
    chart = desk.locator("#forecast svg.chart")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("rect").count() == len(regions)

    soon = {v.history.region_code for v in fleet if (v.end - clock.now).days < 10}
    desk.locator("#days").fill("10")
    desk.get_by_role("button", name="查看").click()
    desk.wait_for_url(live_server + "/staff/forecast?days=10")
    assert desk.locator("#forecast tr[data-region]").count() == len(soon) or (
        not soon and desk.locator("#forecast tbody tr").count() == 1
    )

    with desk.expect_download() as download:
        desk.get_by_role("link", name="下载 CSV").click()
    text = download.value.path().read_text(encoding="utf-8")
    found = list(csv.DictReader(io.StringIO(text)))
    assert {r["key"] for r in found} == soon
