"""Staff pages (issue 7 item 3): Argon2id sign-in, the session cookie, CSRF on every POST,
throttled sign-in, and the bulk verify page for police and regulators.

Clients talk https (``base_url``) as a browser outside the demo would: the cookies are
``Secure`` and a cookie jar sends them over https only.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.cli import main as cli_main
from ctplhub.cli.demo import load_demo, print_samples
from ctplhub.config import Settings
from ctplhub.store.tables import access_log
from helpers import RESIDENT_ID, VIN, Clock, InsurerAccount, event

PASSWORD = "correct horse battery staple"
SESSION = "__Host-ctplhub-staff"


def web_client(container: Container, *, https: bool = True) -> TestClient:
    base = "https://testserver" if https else "http://testserver"
    return TestClient(build_app(container), base_url=base, follow_redirects=False)


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    with web_client(container) as client:
        yield client


@pytest.fixture
def second(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """Another app instance on the same database: a second server process."""
    other = build_container(settings, clock=clock)
    try:
        with web_client(other) as client:
            yield client
    finally:
        other.close()


def staff(container: Container, name: str = "officer-1", role: str = "police") -> str:
    container.users.add(name, role)
    container.users.set_password(name, PASSWORD)
    return name


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(web: TestClient, user: str, password: str = PASSWORD) -> httpx.Response:
    form = web.get("/staff/sign-in")
    assert form.status_code == 200
    data = {"csrf": csrf_in(form.text), "user": user, "password": password}
    return web.post("/staff/sign-in", data=data)


def set_cookies(answer: httpx.Response) -> dict[str, Any]:
    """Each Set-Cookie of an answer, by name, with its attributes."""
    found: dict[str, Any] = {}
    for header in answer.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            found[name] = (morsel, header.lower())
    return found


def share_cookies(source: TestClient, target: TestClient) -> None:
    """The same browser talking to another server process behind the load balancer."""
    for cookie in source.cookies.jar:
        target.cookies.jar.set_cookie(cookie)


def verify_page(web: TestClient) -> httpx.Response:
    return web.get("/staff/verify")


def post_plates(web: TestClient, plates: str, csrf: str | None, at: str = "") -> httpx.Response:
    data = {"plates": plates, "at": at}
    if csrf is not None:
        data["csrf"] = csrf
    return web.post("/staff/verify", data=data)


# --- sign-in and the cookie ----------------------------------------------------------


def test_right_password_signs_in_with_a_strict_secure_httponly_cookie(
    container: Container, web: TestClient
) -> None:
    staff(container)

    answer = sign_in(web, "officer-1")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/staff"
    morsel, raw = set_cookies(answer)[SESSION]
    assert morsel["httponly"] and morsel["secure"]
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/"
    assert "domain=" not in raw  # __Host- cookies are host-only
    home = web.get("/staff")
    assert home.status_code == 200
    assert 'data-user="officer-1"' in home.text
    assert home.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("who", ["officer-1", "nobody"])
def test_wrong_password_or_unknown_user_is_refused_alike(
    container: Container, web: TestClient, who: str
) -> None:
    staff(container)

    answer = sign_in(web, who, "not the password at all")

    assert answer.status_code == 401
    assert "用户名或密码错误" in answer.text
    assert SESSION not in set_cookies(answer)
    assert web.get("/staff").status_code == 303


def test_an_account_without_a_password_cannot_sign_in(
    container: Container, web: TestClient
) -> None:
    container.users.add("officer-2", "police")

    assert sign_in(web, "officer-2", "").status_code == 401


def test_demo_cookie_is_not_secure_and_only_the_demo_turns_secure_off(
    container: Container, settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff(container)
    demo = build_container(settings.model_copy(update={"cookie_secure": False}), clock=clock)
    try:
        with web_client(demo, https=False) as plain:
            answer = sign_in(plain, "officer-1")
            morsel, _ = set_cookies(answer)["ctplhub-staff"]
            assert morsel["httponly"] and not morsel["secure"]
            assert morsel["samesite"].lower() == "strict"
            assert plain.get("/staff").status_code == 200
    finally:
        demo.close()

    monkeypatch.delenv("CTPLHUB_COOKIE_SECURE", raising=False)
    assert Settings().cookie_secure is True  # never off by default
    monkeypatch.setenv("CTPLHUB_COOKIE_SECURE", "true")  # restored after the test
    monkeypatch.setenv("CTPLHUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CTPLHUB_HOME", str(settings.home))
    monkeypatch.setattr("ctplhub.cli.demo.load_demo", lambda *_, **__: {})
    monkeypatch.setattr("ctplhub.cli.demo.print_samples", lambda *_, **__: None)
    # Not the cameras' consumer either: a real one would outlive the test (it stops with
    # the demo's process), on this test's database and the shared broker.
    monkeypatch.setattr("ctplhub.cli.demo.start_anpr_consumer", lambda *_, **__: None)
    seen: list[str | None] = []
    monkeypatch.setattr(
        cli_main, "serve", lambda **_: seen.append(os.environ.get("CTPLHUB_COOKIE_SECURE"))
    )
    cli_main.demo(vehicles=1, host="127.0.0.1", port=8000, serve_after=True, as_json=False)
    assert seen == ["false"]


# --- CSRF ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "0" * 64])
def test_a_post_without_the_right_csrf_token_is_refused(
    container: Container, web: TestClient, token: str | None
) -> None:
    staff(container)
    sign_in(web, "officer-1")

    verify = post_plates(web, "苏E12345", token)
    sign_out = web.post("/staff/sign-out", data={} if token is None else {"csrf": token})

    for refused in (verify, sign_out):
        assert refused.status_code == 403
        assert 'data-reason="csrf_failed"' in refused.text
        assert "表单已过期或来源无法确认" in refused.text
    assert verify_page(web).status_code == 200  # still signed in: sign-out did not happen


def test_csrf_token_of_another_session_is_refused(
    container: Container, web: TestClient, second: TestClient
) -> None:
    staff(container, "officer-1")
    staff(container, "officer-2")
    sign_in(web, "officer-1")
    sign_in(second, "officer-2")
    other = csrf_in(verify_page(second).text)

    assert post_plates(web, "苏E12345", other).status_code == 403


def test_sign_in_form_needs_its_own_csrf_cookie(container: Container, web: TestClient) -> None:
    staff(container)
    form = web.get("/staff/sign-in")
    web.cookies.clear()  # a forged cross-site form: no sign-in cookie

    answer = web.post(
        "/staff/sign-in",
        data={"csrf": csrf_in(form.text), "user": "officer-1", "password": PASSWORD},
    )

    assert answer.status_code == 403
    assert 'data-reason="csrf_failed"' in answer.text
    assert SESSION not in set_cookies(answer)


def test_sign_out_ends_the_session_in_every_process(
    container: Container, web: TestClient, second: TestClient
) -> None:
    staff(container)
    sign_in(web, "officer-1")
    share_cookies(web, second)
    assert verify_page(second).status_code == 200

    out = web.post("/staff/sign-out", data={"csrf": csrf_in(verify_page(web).text)})

    assert out.status_code == 303
    assert verify_page(second).status_code == 303


# --- throttling ----------------------------------------------------------------------


def test_sign_in_is_throttled_after_ten_failures_even_for_the_right_password(
    container: Container, web: TestClient
) -> None:
    staff(container)
    for _ in range(10):
        assert sign_in(web, "officer-1", "wrong password guess").status_code == 401

    answer = sign_in(web, "officer-1")

    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert "尝试次数过多" in answer.text
    assert SESSION not in set_cookies(answer)


# --- disabling -----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["disable", "password"])
def test_disabling_or_a_new_password_ends_sessions_in_every_process(
    container: Container, web: TestClient, second: TestClient, change: str
) -> None:
    staff(container)
    sign_in(web, "officer-1")
    share_cookies(web, second)
    assert verify_page(second).status_code == 200

    if change == "disable":
        container.users.disable("officer-1")
    else:
        container.users.set_password("officer-1", "another long password")

    for client in (web, second):
        assert verify_page(client).status_code == 303
    if change == "disable":
        assert sign_in(web, "officer-1").status_code == 401


def test_signing_in_again_ends_the_session_it_replaces(
    container: Container, web: TestClient, second: TestClient
) -> None:
    staff(container, "officer-1")
    staff(container, "officer-2")
    sign_in(web, "officer-1")
    share_cookies(web, second)  # a copy of the first session's cookie
    # A sign-in form the browser got without its session cookie (a signed-in browser is
    # sent to /staff instead): the POST then carries both the old session and the form.
    form = web.get("/staff/sign-in", headers={"cookie": ""})
    data = {"csrf": csrf_in(form.text), "user": "officer-2", "password": PASSWORD}

    assert web.post("/staff/sign-in", data=data).status_code == 303

    assert 'data-user="officer-2"' in web.get("/staff").text
    assert second.get("/staff").status_code == 303


def test_session_ends_after_its_lifetime(
    container: Container, web: TestClient, clock: Clock
) -> None:
    staff(container)
    sign_in(web, "officer-1")
    clock.advance(hours=8, seconds=-1)
    assert verify_page(web).status_code == 200
    clock.advance(seconds=1)
    assert verify_page(web).status_code == 303


# --- the bulk verify page ------------------------------------------------------------


@pytest.mark.parametrize("role", ["police", "regulator"])
def test_bulk_verify_page_answers_police_and_regulators_without_personal_data(
    container: Container, web: TestClient, picc: InsurerAccount, role: str
) -> None:
    picc.api.report_event(event())
    staff(container, "staff-1", role)
    sign_in(web, "staff-1")
    csrf = csrf_in(verify_page(web).text)

    answer = post_plates(web, "苏E·12345\n\n京A12345\n不是号牌\n", csrf, at="2025-06-01T10:00")

    assert answer.status_code == 200
    statuses = re.findall(r'<tr data-status="([A-Z_]+)"', answer.text)
    assert statuses == ["ACTIVE", "NO_RECORD", "ERROR"]
    assert "PICC" in answer.text
    assert "2026年3月1日 00:00" in answer.text  # cover end, Beijing time
    for personal in ("张伟", RESIDENT_ID, "13812345678", VIN):
        assert personal not in answer.text


def test_bulk_verify_page_reads_go_to_the_access_log_under_the_account(
    container: Container, web: TestClient, picc: InsurerAccount
) -> None:
    picc.api.report_event(event())
    staff(container)
    sign_in(web, "officer-1")

    post_plates(web, "苏E12345\n苏E·12345", csrf_in(verify_page(web).text))
    # The app's own flusher may hold the batch that flush_now no longer sees: wait for it.
    for _ in range(100):
        container.access_log.flush_now()
        with container.engine.connect() as conn:
            rows = conn.execute(
                select(access_log.c.actor, access_log.c.actor_role, access_log.c.purpose)
            ).all()
        if rows:
            break
        time.sleep(0.05)
    assert [tuple(r) for r in rows] == [("officer-1", "police", "bulk_verify")]


def test_bulk_verify_page_explains_a_bad_instant_and_keeps_the_plates(
    container: Container, web: TestClient
) -> None:
    staff(container)
    sign_in(web, "officer-1")
    csrf = csrf_in(verify_page(web).text)

    answer = post_plates(web, "苏E12345", csrf, at="yesterday")

    assert answer.status_code == 400
    assert "核验时间格式不正确" in answer.text
    assert "苏E12345" in answer.text


@pytest.mark.parametrize("role", ["agent", "admin", "auditor", "registrar"])
def test_bulk_verify_page_refuses_other_roles(
    container: Container, web: TestClient, role: str
) -> None:
    staff(container, "staff-1", role)
    sign_in(web, "staff-1")
    csrf = csrf_in(web.get("/staff").text)  # the sign-out form's token

    for answer in (verify_page(web), post_plates(web, "苏E12345", csrf)):
        assert answer.status_code == 403
        assert 'data-reason="role_not_allowed"' in answer.text


def test_bulk_verify_page_sends_anonymous_callers_to_sign_in(web: TestClient) -> None:
    for answer in (verify_page(web), post_plates(web, "苏E12345", "x"), web.get("/staff")):
        assert answer.status_code == 303
        assert answer.headers["location"] == "/staff/sign-in"
    forged = web.get("/staff/verify", headers={"cookie": f"{SESSION}=made-up-session-id"})
    assert forged.status_code == 303


def test_the_demo_prints_a_police_password_that_signs_in(
    container: Container, web: TestClient
) -> None:
    report = load_demo(container, 20, console=Console(file=io.StringIO()), progress=False)
    printed = io.StringIO()
    print_samples(report, Console(file=printed, width=200))

    password = report["police_password"]
    assert password and password in printed.getvalue()
    assert sign_in(web, "demo-police", password + "x").status_code != 303
    assert sign_in(web, "demo-police", password).status_code == 303
