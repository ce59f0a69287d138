"""``/staff/alerts`` (DESIGN §12): a signed-in police officer sees a region's alerts, and
the page's script asks ``/staff/alerts.json`` for new ones; other roles and people not
signed in do not. On both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from test_alerts_api import raise_alerts
from test_staff_pages import sign_in, staff, web_client

from ctplhub.bootstrap import Container
from helpers import Clock


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    with web_client(container) as client:
        yield client


def test_police_see_the_alerts_of_their_region_and_the_page_polls_for_more(
    web: TestClient, container: Container, clock: Clock
) -> None:
    raise_alerts(container, clock)
    assert sign_in(web, staff(container)).status_code == 303
    page = web.get("/staff/alerts?region_prefix=3205")
    assert page.status_code == 200
    assert "道路卡口告警" in page.text and 'src="/static/alerts.js"' in page.text
    assert 'data-region-prefix="3205"' in page.text
    assert page.headers["cache-control"] == "no-store"
    polled = web.get("/staff/alerts.json?region_prefix=3205")
    assert polled.status_code == 200
    assert [a["read_id"] for a in polled.json()["alerts"]] == ["a-sz-1", "a-sz-2"]
    assert polled.json()["alerts"][0]["plate"] == "苏E·11111"
    bad = web.get("/staff/alerts.json?region_prefix=abc")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_failed"
    script = web.get("/static/alerts.js")
    assert script.status_code == 200 and "textContent" in script.text
    assert "innerHTML" not in script.text.replace("never innerHTML", "")


def test_other_roles_are_refused_and_strangers_sent_to_sign_in(
    web: TestClient, container: Container
) -> None:
    assert web.get("/staff/alerts").headers["location"] == "/staff/sign-in"
    assert web.get("/staff/alerts.json").headers["location"] == "/staff/sign-in"
    sign_in(web, staff(container, "agent-1", "agent"))
    assert web.get("/staff/alerts").status_code == 403
    assert web.get("/staff/alerts.json").status_code == 403
