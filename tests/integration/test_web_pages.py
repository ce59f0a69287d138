"""The owner page (GET/POST /): form, answer in words and colour, friendly errors, and
personal data kept out of URLs, caches and the page itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app
from ctplhub.domain.instants import BEIJING
from helpers import VIN, Clock, InsurerAccount, event

VIN_TAIL = VIN[-6:]
NOT_FOUND_TEXT = "未找到匹配的车辆：请核对号牌和车架号后六位"


def rfc3339(at: datetime) -> str:
    return at.astimezone(BEIJING).replace(microsecond=0).isoformat()


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    with TestClient(build_app(container)) as test_client:
        yield test_client


def report(picc: InsurerAccount, start: datetime, end: datetime, **overrides: object) -> None:
    picc.api.report_event(
        event(coverage_start=rfc3339(start), coverage_end=rfc3339(end), **overrides)
    )


def ask(web: TestClient, plate: str = "苏E12345", vin_last6: str = VIN_TAIL) -> str:
    response = web.post("/", data={"plate": plate, "vin_last6": vin_last6})
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/html")
    assert VIN_TAIL not in response.text
    return response.text


def test_form_posts_and_is_made_for_phones(web: TestClient) -> None:
    page = web.get("/")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<form[^>]*method="post"', html)
    assert 'name="plate"' in html and 'name="vin_last6"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta name="referrer" content="no-referrer">' in html
    assert "行驶证" in html and "不会出现在网址中" in html
    assert 'lang="zh-CN"' in html
    assert "http://" not in html and "https://" not in html  # nothing loaded from elsewhere


def test_stylesheet_is_served(web: TestClient) -> None:
    css = web.get("/static/site.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "Noto Sans CJK SC" in css.text


def test_active_policy_is_shown_in_words_with_insurer_and_dates(
    web: TestClient, picc: InsurerAccount, clock: Clock
) -> None:
    end = datetime(2026, 3, 1, tzinfo=BEIJING)
    clock.now = end - timedelta(days=265, hours=3)
    report(picc, end - timedelta(days=365), end)

    html = ask(web, plate="苏e 12345", vin_last6=VIN_TAIL.lower())

    assert "保障中" in html
    assert "status--green" in html
    assert "中国人民财产保险" in html
    assert "…0001" in html  # masked policy number
    assert "LSVAU218XN2******" in html  # masked VIN
    assert "保障至 2026年3月1日 00:00（北京时间）" in html
    assert "还有 265 天到期" in html
    assert 'value="苏E·12345"' in html


def test_renewed_vehicle_names_the_next_policy(
    web: TestClient, picc: InsurerAccount, clock: Clock
) -> None:
    now = clock.now
    report(picc, now - timedelta(days=350), now + timedelta(days=15))
    report(
        picc,
        now + timedelta(days=15),
        now + timedelta(days=380),
        policy_no="PDAA2026320500000002",
        event_type="renew",
        prior_policy_no="PDAA2025320500000001",
    )

    html = ask(web)

    assert "已续保" in html and "status--green" in html
    renewal_starts = (now + timedelta(days=15)).astimezone(BEIJING)
    assert "续保保单" in html and "PICC" in html
    assert f"{renewal_starts.month}月{renewal_starts.day}日 {renewal_starts:%H:%M}" in html


def test_lapsed_vehicle_is_red_with_days_lapsed(
    web: TestClient, picc: InsurerAccount, clock: Clock
) -> None:
    now = clock.now
    report(picc, now - timedelta(days=400), now - timedelta(days=35, hours=1))

    html = ask(web)

    assert "已脱保" in html and "status--red" in html
    assert "已脱保 35 天" in html


def test_wrong_vin_tail_and_unknown_plate_read_the_same(
    web: TestClient, picc: InsurerAccount, clock: Clock
) -> None:
    report(picc, clock.now - timedelta(days=100), clock.now + timedelta(days=265))

    wrong_tail = web.post("/", data={"plate": "苏E12345", "vin_last6": "A1B2C3"})
    unknown = web.post("/", data={"plate": "苏E54321", "vin_last6": VIN_TAIL})

    for response in (wrong_tail, unknown):
        assert response.status_code == 404
        assert NOT_FOUND_TEXT in response.text
        assert response.headers["cache-control"] == "no-store"
        assert "A1B2C3" not in response.text and VIN_TAIL not in response.text
        assert "保障中" not in response.text


def test_invalid_plate_explains_and_refills_the_plate_only(web: TestClient) -> None:
    response = web.post("/", data={"plate": "苏E12I45", "vin_last6": VIN_TAIL})

    assert response.status_code == 400
    assert "号牌格式不正确" in response.text
    assert "letters I and O are never used" in response.text  # the English detail, small
    assert 'value="苏E12I45"' in response.text
    assert VIN_TAIL not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_short_vin_tail_is_a_validation_message(web: TestClient) -> None:
    response = web.post("/", data={"plate": "苏E12345", "vin_last6": "1832"})

    assert response.status_code == 400
    assert "输入有误" in response.text
    assert "1832" not in response.text


def test_markup_in_the_plate_is_escaped(web: TestClient) -> None:
    response = web.post("/", data={"plate": '"><script>alert(1)</script>', "vin_last6": VIN_TAIL})

    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
