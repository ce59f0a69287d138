"""The owner page in a real Chromium on a phone-sized screen, against the real server:
status in words and colour, Beijing dates, clean URLs, no sideways scrolling."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from ctplhub.domain.instants import BEIJING
from helpers import VIN, Clock, InsurerAccount, event

pytestmark = pytest.mark.browser

VIN_TAIL = VIN[-6:]
SCREENSHOT = "/tmp/ctplhub-owner-page.png"


def rfc3339(at: datetime) -> str:
    return at.astimezone(BEIJING).isoformat()


@pytest.fixture(autouse=True)
def whole_second_clock(clock: Clock) -> None:
    clock.now = clock.now.replace(microsecond=0)


def report(picc: InsurerAccount, start: datetime, end: datetime) -> None:
    # Events carry whole seconds; a clock with microseconds would make "265 days" 264.
    assert start.microsecond == end.microsecond == 0
    picc.api.report_event(event(coverage_start=rfc3339(start), coverage_end=rfc3339(end)))


def ask(page: Page, base_url: str, plate: str, vin_tail: str = VIN_TAIL) -> None:
    page.goto(base_url + "/")
    page.locator("#plate").press_sequentially(plate)
    page.locator("#vin_last6").press_sequentially(vin_tail)
    page.get_by_role("button", name="查询").click()
    page.wait_for_load_state()


def tone(css_colour: str) -> str:
    """Name the hue of a computed ``rgb(r, g, b)`` colour: green, amber, red or grey."""
    r, g, b = (int(part) for part in re.findall(r"\d+", css_colour)[:3])
    if max(r, g, b) - min(r, g, b) < 40:
        return "grey"
    if g > r and g > b:
        return "green"
    if r > 2.5 * g and r > b:
        return "red"
    if r > g > b:
        return "amber"
    return f"other {css_colour}"


def status_tones(page: Page) -> tuple[str, str]:
    status = page.locator(".status")
    background = status.evaluate("e => getComputedStyle(e).backgroundColor")
    border = status.evaluate("e => getComputedStyle(e).borderTopColor")
    return tone(background), tone(border)


def assert_fits_phone(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px phone: it scrolls sideways"


def assert_url_is_clean(page: Page, base_url: str) -> None:
    assert page.url == base_url + "/"
    for secret in ("12345", VIN_TAIL, quote("苏"), "plate", "vin"):
        assert secret not in page.url.removeprefix(base_url)


def test_active_vehicle_reads_green_on_a_phone(
    live_server: str, phone: Page, picc: InsurerAccount, clock: Clock
) -> None:
    report(picc, clock.now - timedelta(days=100), clock.now + timedelta(days=265))

    ask(phone, live_server, "苏e 12345")

    assert phone.locator(".status").inner_text() == "保障中"
    assert status_tones(phone) == ("green", "green")
    answer = phone.locator("#answer").inner_text()
    assert "中国人民财产保险" in answer and "还有 265 天到期" in answer
    assert phone.locator("#plate").input_value() == "苏E·12345"
    assert phone.locator("#vin_last6").input_value() == ""
    assert_url_is_clean(phone, live_server)
    assert_fits_phone(phone)
    phone.screenshot(path=SCREENSHOT, full_page=True)


def test_lapsed_vehicle_reads_red(
    live_server: str, phone: Page, picc: InsurerAccount, clock: Clock
) -> None:
    report(picc, clock.now - timedelta(days=400), clock.now - timedelta(days=35, hours=1))

    ask(phone, live_server, "苏E·12345")

    assert phone.locator(".status").inner_text() == "已脱保"
    assert status_tones(phone) == ("red", "red")
    assert "已脱保 35 天" in phone.locator("#answer").inner_text()
    assert_url_is_clean(phone, live_server)
    assert_fits_phone(phone)


def test_dates_are_shown_in_beijing_time(
    live_server: str, phone: Page, picc: InsurerAccount, clock: Clock
) -> None:
    # Cover ends at 2026-03-01 00:00 Beijing, which is still 2026-02-28 in UTC: a page
    # that printed UTC (or the phone's own zone, UTC here) would show the wrong day.
    end = datetime(2026, 3, 1, tzinfo=BEIJING)
    clock.now = end - timedelta(days=10, hours=6)
    report(picc, end - timedelta(days=365), end)

    ask(phone, live_server, "苏E12345")

    text = phone.locator("#answer").inner_text()
    assert phone.locator(".status").inner_text() == "即将到期"
    assert status_tones(phone) == ("amber", "amber")
    assert "保障至 2026年3月1日 00:00（北京时间）" in text
    assert "2月28日" not in text
    assert_fits_phone(phone)


def test_wrong_vin_tail_keeps_the_plate_but_not_the_tail(
    live_server: str, phone: Page, picc: InsurerAccount, clock: Clock
) -> None:
    report(picc, clock.now - timedelta(days=100), clock.now + timedelta(days=265))

    ask(phone, live_server, "苏E12345", vin_tail="A1B2C3")

    assert "未找到匹配的车辆：请核对号牌和车架号后六位" in phone.locator("#error").inner_text()
    assert phone.locator(".status").count() == 0
    assert phone.locator("#plate").input_value() == "苏E12345"
    assert phone.locator("#vin_last6").input_value() == ""
    assert_url_is_clean(phone, live_server)
    assert_fits_phone(phone)


def test_form_is_comfortable_to_use_on_a_phone(live_server: str, phone: Page) -> None:
    phone.goto(live_server + "/")

    assert phone.locator("form.query-form").get_attribute("method") == "post"
    for target in ("#plate", "#vin_last6", ".query-form button"):
        box = phone.locator(target).bounding_box()
        assert box is not None and box["height"] >= 44, f"{target} is too small to tap"
    font = phone.locator("body").evaluate("e => getComputedStyle(e).fontFamily")
    assert "Noto Sans CJK SC" in font
    assert_fits_phone(phone)
