"""The /verify page in a real Chromium against the real server (DESIGN §6.1): a pasted
token shows the signature's verdict beside the live status; a certificate of a policy
surrendered since reads "valid" next to "not covered now"; a tampered one is invalid.
The camera path runs with Chromium's fake camera and a stand-in BarcodeDetector (the
real one is not in Chromium on Linux): the page's own script fills and sends the form."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from helpers import VIN, Clock, InsurerAccount, event

pytestmark = pytest.mark.browser

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
POLICY = "PDAA2026320500000001"
THIS_YEAR = {
    "policy_no": POLICY,
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}
SCREENSHOT = "/tmp/ctplhub-verify-page.png"
# As tests/e2e/conftest.py's, plus a fake camera (its module's fixtures cannot be imported).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium with a fake camera that needs no permission prompt."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium to run browser tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", timezone_id="UTC"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        yield page
        assert problems == []  # no CSP refusal, no script error
    finally:
        context.close()


@pytest.fixture
def token(live_server: str, picc: InsurerAccount, clock: Clock) -> str:
    clock.now = NOW
    picc.api.report_event(event(**THIS_YEAR))
    answer = httpx.post(
        live_server + "/v1/certificates", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
    )
    assert answer.status_code == 201, answer.text
    issued: str = answer.json()["token"]
    return issued


def paste_and_check(page: Page, base_url: str, token: str, path: str = "/verify") -> None:
    page.goto(base_url + path)
    page.locator("#token").fill(token)
    page.get_by_role("button", name="核验").click()
    page.wait_for_load_state()


def test_a_pasted_valid_token_reads_valid_and_covered(
    live_server: str, phone: Page, token: str
) -> None:
    paste_and_check(phone, live_server, token)

    assert phone.locator("#signature").get_attribute("data-valid") == "true"
    assert "有效" in phone.locator("#signature").inner_text()
    live = phone.locator("#live")
    assert live.get_attribute("data-covered") == "true"
    assert "保障中" in live.inner_text() and "在保" in live.inner_text()
    assert "苏E·12345" in phone.locator(".facts").inner_text()
    assert phone.url == live_server + "/verify"  # the token never went into the URL
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path=SCREENSHOT, full_page=True)


def test_a_policy_surrendered_since_reads_valid_but_not_covered(
    live_server: str, phone: Page, token: str, picc: InsurerAccount
) -> None:
    picc.api.report_event(
        event(
            **{**THIS_YEAR, "occurred_at": "2026-11-25T09:00:00+08:00"},
            version=2,
            event_type="surrender",
            effective_at="2026-11-25T09:00:00+08:00",
        )
    )

    paste_and_check(phone, live_server, token)

    assert phone.locator("#signature").get_attribute("data-valid") == "true"
    live = phone.locator("#live")
    assert live.get_attribute("data-covered") == "false"
    assert live.is_visible()
    assert "此刻未在保" in live.inner_text()
    border = live.evaluate("e => getComputedStyle(e).borderTopColor")
    assert border == "rgb(179, 38, 30)"  # the red of a lapse, beside the green verdict
    phone.screenshot(path="/tmp/ctplhub-verify-page-surrendered.png", full_page=True)


def test_a_tampered_token_reads_invalid_and_shows_nothing_else(
    live_server: str, phone: Page, token: str
) -> None:
    head, _, tail = token.partition(".")

    paste_and_check(phone, live_server, f"{head}.{tail[1:]}{tail[0]}")

    assert phone.locator("#signature").get_attribute("data-valid") == "false"
    assert "无效" in phone.locator("#signature").inner_text()
    assert phone.locator("#live").count() == 0
    assert phone.locator(".facts").count() == 0


def test_english_on_request_and_remembered(live_server: str, phone: Page, token: str) -> None:
    phone.goto(live_server + "/verify?lang=en")
    assert phone.locator("html").get_attribute("lang") == "en"
    phone.locator("#token").fill(token)
    phone.get_by_role("button", name="Check").click()
    phone.wait_for_load_state()

    assert "Valid" in phone.locator("#signature").inner_text()
    assert "Covered now" in phone.locator("#live").inner_text()


STAND_IN_DETECTOR = """
window.BarcodeDetector = class {
  constructor(options) { this.formats = options.formats; }
  async detect(source) {
    return source.videoWidth > 0 ? [{ format: "qr_code", rawValue: window.__scanned }] : [];
  }
};
"""


def test_a_camera_scan_fills_and_sends_the_form(live_server: str, phone: Page, token: str) -> None:
    phone.add_init_script(STAND_IN_DETECTOR + f"window.__scanned = {token!r};")
    phone.goto(live_server + "/verify")

    phone.get_by_role("button", name="用摄像头扫描二维码").click()
    phone.wait_for_url(live_server + "/verify")
    phone.locator("#signature").wait_for()

    assert phone.locator("#signature").get_attribute("data-valid") == "true"
    assert phone.locator("#live").get_attribute("data-covered") == "true"


def test_without_barcode_detection_the_scan_button_stays_hidden(
    live_server: str, phone: Page
) -> None:
    phone.goto(live_server + "/verify")

    has_api = phone.evaluate("'BarcodeDetector' in window")
    assert phone.locator("#scan").is_visible() is has_api
    assert phone.locator("#token").is_visible()
