"""The police's live alerts page in a real Chromium (DESIGN §12): an officer keeps
``/staff/alerts`` open for a region while a camera publishes reads over a real Mosquitto
to the consumer; the alert of an uninsured plate seen in the region appears on the page
by itself, without a reload, and alerts of other regions and dropped reads do not."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from anpr_fixtures import alert_listener, consumer_thread, mqtt_port, publish, read, topic_root
from ctplhub.bootstrap import Container
from helpers import STAFF_PASSWORD, Clock, staff_sign_in

__all__ = ["mqtt_port", "topic_root"]  # fixtures, used by name

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/ctplhub-staff-alerts.png"
NEVER_REPORTED = "苏E·55555"  # no vehicle carries it: NO_RECORD, an alert


def test_an_alert_appears_on_the_open_page_without_a_reload(
    live_server: str,
    desk: Page,
    container: Container,
    clock: Clock,
    mqtt_port: int,
    topic_root: str,
) -> None:
    container.users.add("officer-1", "police")
    container.users.set_password("officer-1", STAFF_PASSWORD)
    staff_sign_in(desk, live_server, "officer-1", "/staff/alerts?region_prefix=3205")
    desk.goto(live_server + "/staff/alerts?region_prefix=3205")
    state = desk.locator("#alerts-state")
    rows = desk.locator("#alerts tbody tr")
    loading = state.text_content()
    expect(state).not_to_have_text(loading or "")  # the first poll has answered
    assert rows.count() == 0
    desk.evaluate("window.stillTheSamePage = true")

    now = clock.now
    with (
        alert_listener(mqtt_port, topic_root) as listener,
        consumer_thread(container, mqtt_port, topic_root),
    ):
        publish(
            mqtt_port,
            topic_root,
            [
                read("r-elsewhere", "沪A·44444", seen_at=now, region="310115", camera="cam-3"),
                read("r-unsure", "苏E·66666", seen_at=now, confidence=0.5),
                read("r-here", NEVER_REPORTED, seen_at=now, region="320505", camera="cam-7"),
            ],
        )
        listener.wait_for(2)  # both alerts kept and published

        expect(rows).to_have_count(1, timeout=20_000)
        row = rows.first
        assert row.get_attribute("data-alert-id") == next(
            a["alert_id"] for a in listener.alerts() if a["read_id"] == "r-here"
        )
        assert "status-no_record" in (row.get_attribute("class") or "")
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == NEVER_REPORTED and cells[4:] == ["320505", "cam-7"]
        # One more refresh: still only the region's alert (not Shanghai's, not the
        # low-confidence read's), and the same page, never reloaded.
        refreshed = state.text_content()
        expect(state).not_to_have_text(refreshed or "", timeout=10_000)
        assert rows.count() == 1
        assert desk.evaluate("window.stillTheSamePage") is True
        desk.screenshot(path=SCREENSHOT, full_page=True)
