"""The regulators' statistics page, ``/staff/stats`` (DESIGN §11), on both engines: the
hand-built history's figures in tables and server-rendered SVG charts, in Chinese first,
the CSV downloads, and the role guard."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from helpers import signed_in
from stats_history import cpic, history

__all__ = ["cpic", "history"]  # fixtures, used by name


@pytest.mark.usefixtures("history")
def test_the_page_draws_each_figure_with_its_table_and_chart(
    web: TestClient, container: Container
) -> None:
    signed_in(web, container, "reg-1", "regulator")

    page = web.get("/staff/stats?group_by=region&from=2026-01-01&to=2026-06-30")

    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "续保与脱保统计" in html
    assert html.count('<svg class="chart"') == 3
    assert '<tr data-key="320500"><td><strong>320500</strong></td><td>3</td><td>1</td>' in html
    assert "320600：到期 2，按时续保 0，延迟续保 0，脱保 2" in html  # the bar's <title>
    assert html.count('<rect class="day"') == 90
    assert 'data-day="2026-07-01"' in html
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from another origin
    assert "/staff/stats/renewals.csv?group_by=region&amp;from=2026-01-01&amp;to=2026-06-09" in html

    english = web.get("/staff/stats?lang=en").text
    assert "Renewal and lapse statistics" in english


@pytest.mark.usefixtures("history")
def test_the_downloads_are_the_apis_csv(web: TestClient, container: Container) -> None:
    signed_in(web, container, "reg-1", "regulator")

    renewals = web.get("/staff/stats/renewals.csv?group_by=insurer&from=2026-01-01&to=2026-06-30")
    lapses = web.get("/staff/stats/lapses.csv?group_by=region")
    expiring = web.get("/staff/stats/expiring.csv?days=30")
    bad = web.get("/staff/stats?from=someday")

    assert renewals.text.splitlines()[1:] == ["CPIC,1,0,0,1,0.0", "PICC,4,1,1,2,0.5"]
    assert renewals.headers["content-disposition"] == 'attachment; filename="renewals.csv"'
    assert lapses.text.splitlines()[1:] == ["320500,1,129.0", "320600,2,55.0"]
    assert len(expiring.text.splitlines()) == 31
    assert bad.status_code == 400
    assert 'id="error"' in bad.text


def test_other_roles_are_refused_and_strangers_sent_to_sign_in(
    web: TestClient, container: Container
) -> None:
    assert web.get("/staff/stats").headers["location"] == "/staff/sign-in"
    signed_in(web, container, "officer-1", "police")
    for path in ("/staff/stats", "/staff/stats/lapses.csv"):
        refused = web.get(path)
        assert refused.status_code == 403
        assert 'data-reason="role_not_allowed"' in refused.text


def test_the_staff_home_links_regulators_to_the_statistics(
    web: TestClient, container: Container
) -> None:
    signed_in(web, container, "reg-1", "regulator")
    assert 'href="/staff/stats"' in web.get("/staff").text
