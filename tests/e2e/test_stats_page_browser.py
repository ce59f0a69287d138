"""The regulators' statistics page in a real Chromium (DESIGN §11; issue 12 item 5):
renewals of the hand-built history grouped by region for a period chosen in the form,
the three SVG charts, the CSV download, and a police officer refused at the door."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import Page

from ctplhub.bootstrap import Container
from stats_history import cpic, history

__all__ = ["cpic", "history"]  # fixtures, used by name
from helpers import STAFF_PASSWORD, staff_sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/ctplhub-staff-stats.png"


@pytest.mark.usefixtures("history")
def test_regulator_reads_renewals_by_region_with_charts_and_downloads_the_csv(
    live_server: str, desk: Page, container: Container
) -> None:
    container.users.add("reg-1", "regulator")
    container.users.set_password("reg-1", STAFF_PASSWORD)
    staff_sign_in(desk, live_server, "reg-1", "/staff/stats")

    desk.get_by_role("link", name="续保与脱保统计").click()
    desk.wait_for_url(live_server + "/staff/stats")
    desk.locator("#group_by").select_option("region")
    desk.locator("#from").fill("2026-01-01")
    desk.locator("#to").fill("2026-06-30")
    desk.get_by_role("button", name="查看").click()
    desk.wait_for_url(live_server + "/staff/stats?*")

    cells = desk.locator("#renewals tr[data-key='320500'] td").all_inner_texts()
    assert cells == ["320500", "3", "1", "1", "1", "66.7%"]
    assert desk.locator("#renewals svg.chart g.group").count() == 2
    assert desk.locator("#expiring svg.chart rect.day").count() == 90
    lapsed = desk.locator("#lapses tr[data-key='320600'] td").all_inner_texts()
    assert lapsed == ["320600", "2", "55.0"]
    for chart in desk.locator("svg.chart").all():
        assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-label")
    desk.screenshot(path=SCREENSHOT, full_page=True)

    with desk.expect_download() as download:
        desk.locator("#renewals a", has_text="下载").click()
    text = download.value.path().read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["key", "due", "renewed_on_time", "renewed_late", "lapsed", "renewal_rate"],
        ["320500", "3", "1", "1", "1", "0.6667"],
        ["320600", "2", "0", "0", "2", "0.0"],
    ]


def test_a_police_officer_is_refused_the_statistics(
    live_server: str, desk: Page, container: Container
) -> None:
    container.users.add("officer-2", "police")
    container.users.set_password("officer-2", STAFF_PASSWORD)
    staff_sign_in(desk, live_server, "officer-2", "/staff/stats")
    answer = desk.goto(live_server + "/staff/stats")
    assert answer is not None and answer.status == 403
    assert desk.locator("#renewals").count() == 0
