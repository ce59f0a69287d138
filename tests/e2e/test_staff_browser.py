"""The staff pages in a real Chromium against the real server: an officer is sent to
sign in, signs in, verifies plates in bulk, sees the table, and signs out.

The server is configured as ``ctplhub demo`` serves it (plain http on 127.0.0.1, so the
cookie is not ``Secure``); every other attribute is the production one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page

from ctplhub.bootstrap import Container
from helpers import VIN, Clock, InsurerAccount, event

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
SCREENSHOT = "/tmp/ctplhub-staff-verify.png"


def test_officer_signs_in_verifies_plates_and_signs_out(
    live_server: str,
    desk: Page,
    container: Container,
    picc: InsurerAccount,
    clock: Clock,
) -> None:
    start = clock.now.replace(microsecond=0) - timedelta(days=100)
    picc.api.report_event(
        event(
            coverage_start=start.isoformat(),
            coverage_end=(start + timedelta(days=365)).isoformat(),
            occurred_at=(start - timedelta(days=1)).isoformat(),
        )
    )
    container.users.add("officer-1", "police")
    container.users.set_password("officer-1", PASSWORD)

    desk.goto(live_server + "/staff/verify")
    assert desk.url == live_server + "/staff/sign-in"
    desk.locator("#user").fill("officer-1")
    desk.locator("#password").fill(PASSWORD)
    desk.get_by_role("button", name="登录").click()
    desk.wait_for_url(live_server + "/staff")

    cookie = next(c for c in desk.context.cookies() if c["name"] == "ctplhub-staff")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not desk.evaluate("document.cookie")  # no script can read it

    desk.get_by_role("link", name="批量核验交强险").click()
    desk.locator("#plates").fill("苏E12345\n京A12345")
    desk.get_by_role("button", name="核验").click()
    desk.wait_for_load_state()

    rows = desk.locator("#results tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-status") == "ACTIVE"
    assert "保障中" in rows.nth(0).inner_text() and "PICC" in rows.nth(0).inner_text()
    assert rows.nth(1).get_attribute("data-status") == "NO_RECORD"
    assert VIN not in desk.content()
    assert desk.url == live_server + "/staff/verify"  # the plates never sat in the URL
    desk.screenshot(path=SCREENSHOT, full_page=True)

    desk.get_by_role("button", name="退出登录").click()
    desk.wait_for_url(live_server + "/staff/sign-in")
    desk.goto(live_server + "/staff/verify")
    assert desk.url == live_server + "/staff/sign-in"
