"""Issue 11 item 4: the owner's journeys and the hotline console in a real Chromium at a
phone's size, against the real server: query → result with its timeline, the
e-certificate, reminders, the language switch remembered, the chat box (with and without
script) and the console for a signed-in agent.

Every page visited is checked by axe-core (vendored: tests/e2e/vendor/) for ``serious``
or ``critical`` violations, and a screenshot of it is kept under ``test-artifacts/``
(git-ignored; ``CTPLHUB_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from ctplhub.bootstrap import Container
from ctplhub.domain.instants import BEIJING
from helpers import VIN, Clock, InsurerAccount, event

pytestmark = pytest.mark.browser

VIN_TAIL = VIN[-6:]
PASSWORD = "correct horse battery staple"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(
    os.environ.get("CTPLHUB_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)
BLOCKING = ("serious", "critical")
PHONE = {"width": 390, "height": 844}


def phone_context(browser: Browser, *, script: bool = True) -> BrowserContext:
    return browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="UTC",
        java_script_enabled=script,
    )


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = phone_context(browser)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        yield page
        assert problems == []  # no CSP refusal, no script error, on any page visited
    finally:
        context.close()


def rfc3339(at: datetime) -> str:
    return at.astimezone(BEIJING).replace(microsecond=0).isoformat()


def report(picc: InsurerAccount, start: datetime, end: datetime, number: str) -> None:
    picc.api.report_event(
        event(coverage_start=rfc3339(start), coverage_end=rfc3339(end), policy_no=number)
    )


def checked(page: Page, name: str, request: pytest.FixtureRequest) -> None:
    """axe-core finds nothing serious or critical; the page fits the phone; screenshot."""
    page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP holds
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], f"{name}: {blocking}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width}px wide: it scrolls sideways"
    test_id = re.sub(r"[^\w.-]+", "_", request.node.name)
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{test_id}-{name}.png"), full_page=True)


def fill_owner_form(page: Page, plate: str = "苏E12345") -> None:
    page.locator("#plate").fill(plate)
    page.locator("#vin_last6").fill(VIN_TAIL)


def test_query_result_certificate_and_subscribe(
    live_server: str,
    phone: Page,
    picc: InsurerAccount,
    clock: Clock,
    request: pytest.FixtureRequest,
) -> None:
    now = clock.now
    report(picc, now - timedelta(days=400), now - timedelta(days=120), "PDAA2025000000000001")
    report(picc, now - timedelta(days=100), now + timedelta(days=20), "PDAA2026000000000002")
    report(picc, now + timedelta(days=20), now + timedelta(days=385), "PDAA2027000000000003")

    phone.goto(live_server + "/")
    checked(phone, "query", request)
    fill_owner_form(phone, "苏e 12345")
    phone.get_by_role("button", name="查询").click()
    phone.locator("#answer").wait_for()
    assert phone.url == live_server + "/"  # nothing personal in the address
    status = phone.locator("#status")
    assert status.get_attribute("data-status") == "RENEWED"
    assert status.inner_text().strip() == "已续保"
    assert status.locator("svg.icon").count() == 1
    timeline = phone.get_by_role("img", name=re.compile("保障时间线"))
    assert timeline.is_visible()
    assert phone.locator(".tl-gap").count() >= 1 and phone.locator(".tl-next").count() >= 1
    checked(phone, "result", request)

    phone.get_by_role("link", name="获取电子凭证").click()
    fill_owner_form(phone)
    phone.get_by_role("button", name="出具电子凭证").click()
    phone.locator("#certificate").wait_for()
    assert phone.get_by_role("img", name="电子凭证码的二维码").is_visible()
    assert "苏E·12345" in phone.locator("#certificate").inner_text()
    checked(phone, "certificate", request)

    phone.goto(live_server + "/subscribe")
    fill_owner_form(phone)
    phone.get_by_label("短信").check()
    phone.get_by_label("手机号码或电子邮箱").fill("13812345678")
    phone.get_by_role("button", name="订阅").click()
    phone.locator("#subscribed").wait_for()
    assert "已订阅" in phone.locator("#subscribed").inner_text()
    checked(phone, "subscribed", request)


def test_language_switch_is_remembered_across_pages(
    live_server: str, phone: Page, request: pytest.FixtureRequest
) -> None:
    phone.goto(live_server + "/renew")
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    assert "第三十九条" in phone.locator("main").inner_text()
    phone.get_by_role("link", name="English").click()
    phone.wait_for_url(live_server + "/renew?lang=en")
    assert phone.locator("html").get_attribute("lang") == "en"
    assert "article 39" in phone.locator("main").inner_text()
    checked(phone, "renew-en", request)
    for path in ("/", "/faq", "/privacy", "/who-read", "/verify"):
        phone.goto(live_server + path)  # no ?lang=: the cookie remembers
        assert phone.locator("html").get_attribute("lang") == "en", path
        checked(phone, (path.strip("/") or "home") + "-en", request)
    phone.get_by_role("link", name="中文").click()
    assert phone.locator("html").get_attribute("lang") == "zh-CN"


def test_chat_box_answers_in_place_and_without_script(
    live_server: str,
    phone: Page,
    browser: Browser,
    picc: InsurerAccount,
    clock: Clock,
    request: pytest.FixtureRequest,
) -> None:
    report(picc, clock.now - timedelta(days=10), clock.now + timedelta(days=355), "P1")
    phone.goto(live_server + "/")
    phone.get_by_label("您的问题").fill("苏E12345 的交强险续保了吗？")
    phone.get_by_label("车架号后六位（查询本车时填写）").fill(VIN_TAIL)
    phone.get_by_role("button", name="提问").click()
    answer = phone.locator("#chat-answer")
    answer.wait_for()
    assert "苏E·12345" in answer.inner_text()
    assert phone.url == live_server + "/"  # answered in place, by script
    checked(phone, "chat", request)

    context = phone_context(browser, script=False)
    try:
        plain = context.new_page()
        plain.goto(live_server + "/")
        plain.get_by_label("您的问题").fill("how do I renew my CTPL?")
        plain.get_by_role("button", name="提问").click()
        plain.wait_for_url(live_server + "/ask")
        assert plain.locator("#chat-answer").get_attribute("lang") == "en"
        assert plain.locator("#chat-answer").inner_text().strip()
    finally:
        context.close()


def test_agent_console_look_up_with_script(
    live_server: str,
    phone: Page,
    container: Container,
    picc: InsurerAccount,
    clock: Clock,
    request: pytest.FixtureRequest,
) -> None:
    report(picc, clock.now - timedelta(days=400), clock.now - timedelta(days=30), "P1")
    container.users.add("agent-007", "agent")
    container.users.set_password("agent-007", PASSWORD)

    phone.goto(live_server + "/staff/console")
    phone.wait_for_url(live_server + "/staff/sign-in")
    checked(phone, "sign-in", request)
    phone.get_by_label("账号").fill("agent-007")
    phone.get_by_label("密码").fill(PASSWORD)
    phone.get_by_role("button", name="登录").click()
    phone.wait_for_url(live_server + "/staff")
    phone.get_by_role("link", name="热线客服台").click()
    phone.get_by_label("号牌号码").fill("苏E12345")
    phone.get_by_label("事由").select_option("hotline")
    phone.get_by_label("车架号后六位").check()
    phone.get_by_label("来电人报出的内容").fill(VIN_TAIL)
    phone.get_by_role("button", name="查询").click()
    script = phone.locator("#script")
    script.wait_for()
    assert script.get_attribute("data-status") == "LAPSED"
    assert "已脱保" in script.inner_text() and "2 倍" in script.inner_text()
    checked(phone, "console", request)


def test_dispute_filed_from_the_answer_and_followed(
    live_server: str,
    phone: Page,
    picc: InsurerAccount,
    clock: Clock,
    request: pytest.FixtureRequest,
) -> None:
    """The owner who renewed elsewhere sees "lapsed", files a dispute from the answer,
    keeps the code, and follows it once the insurer has answered."""
    now = clock.now
    report(picc, now - timedelta(days=400), now - timedelta(days=30), "PDAA2025000000000001")

    phone.goto(live_server + "/")
    fill_owner_form(phone)
    phone.get_by_role("button", name="查询").click()
    phone.locator("#answer").wait_for()
    assert phone.locator("#status").get_attribute("data-status") == "LAPSED"
    phone.get_by_role("link", name="查询结果有误？提交异议").click()
    checked(phone, "dispute-form", request)
    fill_owner_form(phone)
    phone.get_by_label("已续保，但查不到续保记录").check()
    phone.get_by_label(re.compile("情况说明")).fill("11月1日在人保柜台续保，保单号 PDAA2026X。")
    phone.get_by_role("button", name="提交异议").click()
    phone.locator("#filed").wait_for()
    assert phone.url == live_server + "/dispute"  # nothing personal in the address
    number = phone.locator("#dispute-number").inner_text()
    token = phone.locator("#dispute-token").input_value()
    checked(phone, "dispute-filed", request)

    answered = picc.api.request(
        "POST", f"/v1/disputes/{number}/resolve", json={"outcome": "corrected", "note": "已补报"}
    )
    assert answered.status_code == 200

    phone.get_by_role("link", name="查询异议进度").click()
    phone.get_by_label("异议编号").fill(number)
    phone.get_by_label("查询码").fill(token)
    phone.get_by_role("button", name="查询").click()
    phone.locator("#dispute").wait_for()
    assert phone.locator("#dispute").get_attribute("data-status") == "resolved"
    assert "保险公司已答复" in phone.locator("#dispute").inner_text()
    checked(phone, "dispute-followed", request)
