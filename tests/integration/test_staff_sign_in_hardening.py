"""Staff sign-in hardening (issue 7 review): one account name for the throttle and the
look-up, attempts counted before the password is checked, no session from a password or
account that changed meanwhile, and form caps that hold for the bytes actually sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient
from test_staff_pages import (
    PASSWORD,
    SESSION,
    csrf_in,
    set_cookies,
    sign_in,
    staff,
    verify_page,
    web_client,
)

from ctplhub.bootstrap import Container, build_app
from ctplhub.domain.errors import Unauthenticated
from ctplhub.security import passwords, tokens
from ctplhub.services.staff_sessions import StaffSessions
from ctplhub.store.tables import staff_sessions
from ctplhub.store.unit_of_work import SqlUnitOfWork
from helpers import Clock

BIG = 10 * 1024 * 1024  # 10 MiB


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    with web_client(container) as client:
        yield client


def sessions_of(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(staff_sessions)).scalar_one())


# --- 1. one name for the throttle and the look-up ------------------------------------


def test_padding_the_name_does_not_give_a_fresh_throttle_budget(
    container: Container, web: TestClient
) -> None:
    staff(container)
    for _ in range(10):
        assert sign_in(web, "officer-1", "wrong password guess").status_code == 401

    # Each padding used to be a budget of its own while the look-up stripped it away.
    for k in (0, 3, 91):
        padded = "officer-1" + "\t" * k + " " * (91 - k) + "x"
        assert len(padded) == 101
        answer = sign_in(web, padded)
        assert answer.status_code == 401, k  # over 100 characters: a failed sign-in
        assert SESSION not in set_cookies(answer)
    for padded in ("officer-1\t ", " officer-1", "officer-1" + " " * 91):
        answer = sign_in(web, padded)
        assert answer.status_code == 429, repr(padded)  # the account's own budget
        assert SESSION not in set_cookies(answer)
    assert sessions_of(container) == 0


def test_a_name_over_100_characters_is_refused_not_cut_to_an_account(
    container: Container, web: TestClient
) -> None:
    longest = staff(container, "a" * 100)

    assert sign_in(web, longest + "b").status_code == 401  # was cut to the account's name
    assert sign_in(web, " officer-1 ").status_code == 401  # no such account
    assert sign_in(web, f"  {longest}\t").status_code == 303  # trimmed once, then looked up


def test_the_service_looks_up_exactly_the_name_it_is_given(container: Container) -> None:
    staff(container)

    with pytest.raises(Unauthenticated):
        container.staff_sessions.sign_in(" officer-1", PASSWORD)
    assert container.staff_sessions.sign_in("officer-1", PASSWORD).session.user == "officer-1"


# --- 2. concurrent guesses -----------------------------------------------------------


def test_guesses_sent_at_once_cannot_overtake_the_account_budget(
    container: Container, web: TestClient
) -> None:
    staff(container)
    form = web.get("/staff/sign-in")
    data = {"csrf": csrf_in(form.text), "user": "officer-1", "password": "wrong guess"}
    cookie = "; ".join(f"{c.name}={c.value}" for c in web.cookies.jar)

    def guess(_: int) -> int:
        # 25 stay under the per-client budget (30): only the account's budget is tested,
        # as if each guess came from an address of its own.
        return web.post("/staff/sign-in", data=data, headers={"cookie": cookie}).status_code

    with ThreadPoolExecutor(25) as pool:
        statuses = list(pool.map(guess, range(25)))

    assert statuses.count(401) <= 10, statuses
    assert set(statuses) <= {401, 429}
    assert sign_in(web, "officer-1").status_code == 429


# --- 3. a change between the password check and the session --------------------------


def racing_sessions(container: Container, clock: Clock, change: str) -> StaffSessions:
    """The container's sign-in, with ``change`` committed by another caller while the
    password is being checked (the ~70 ms Argon2 window)."""

    def password_matches(encoded: str | None, given: str) -> bool:
        matched = passwords.password_matches(encoded, given)
        if change == "disable":
            container.users.disable("officer-1")
        else:
            container.users.set_password("officer-1", "another long password")
        return matched

    return StaffSessions(
        lambda: SqlUnitOfWork(container.engine),
        clock,
        new_session_id=tokens.new_session_id,
        hash_id=tokens.hash_token,
        csrf_of=tokens.csrf_token,
        password_matches=password_matches,
    )


@pytest.mark.parametrize("change", ["disable", "password"])
def test_a_change_committed_during_the_password_check_gets_no_session(
    container: Container, clock: Clock, change: str
) -> None:
    staff(container)

    with pytest.raises(Unauthenticated):
        racing_sessions(container, clock, change).sign_in("officer-1", PASSWORD)

    assert sessions_of(container) == 0
    container.users.enable("officer-1")
    container.users.set_password("officer-1", PASSWORD)
    assert container.staff_sessions.sign_in("officer-1", PASSWORD).session.user == "officer-1"


def test_enabling_an_account_does_not_revive_its_old_sessions(
    container: Container, web: TestClient, clock: Clock
) -> None:
    staff(container)
    assert sign_in(web, "officer-1").status_code == 303
    container.users.disable("officer-1")
    # A session that got in after the disable (the race above, on an older build): it
    # must not come back to life with the account.
    signed = container.staff_sessions
    with SqlUnitOfWork(container.engine) as uow:
        now = clock()
        uow.users.add_session(
            tokens.hash_token("left-over"), "officer-1", now, now + timedelta(days=1)
        )
        uow.commit()

    container.users.enable("officer-1")

    assert signed.session("left-over") is None
    assert verify_page(web).status_code == 303
    assert sessions_of(container) == 0


# --- 4. form caps hold for chunked bodies --------------------------------------------


def chunks(prefix: bytes, total: int) -> Iterator[bytes]:
    """A url-encoded form of ``total`` bytes sent with no Content-Length (chunked)."""
    yield prefix
    sent = len(prefix)
    while sent < total:
        piece = min(65536, total - sent)
        yield b"a" * piece
        sent += piece


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_chunked_oversized_owner_form_is_413(container: Container) -> None:
    with TestClient(build_app(container)) as web:
        answer = web.post(
            "/", content=chunks(b"plate=%E8%8B%8FE12345&vin_last6=", BIG), headers=FORM
        )

    assert answer.request.headers.get("content-length") is None
    assert answer.status_code == 413
    assert "提交的内容过长" in answer.text


def test_a_chunked_oversized_sign_in_form_is_413(container: Container, web: TestClient) -> None:
    staff(container)
    form = web.get("/staff/sign-in")
    prefix = f"csrf={csrf_in(form.text)}&user=officer-1&password=".encode()

    answer = web.post("/staff/sign-in", content=chunks(prefix, BIG), headers=FORM)

    assert answer.request.headers.get("content-length") is None
    assert answer.status_code == 413
    assert "提交的内容过长" in answer.text
    assert SESSION not in set_cookies(answer)


def test_a_small_chunked_form_is_read(container: Container, web: TestClient) -> None:
    staff(container)
    form = web.get("/staff/sign-in")
    body = f"csrf={csrf_in(form.text)}&user=officer-1&password={PASSWORD.replace(' ', '+')}"

    answer = web.post("/staff/sign-in", content=iter([body.encode()]), headers=FORM)

    assert answer.status_code == 303


@pytest.mark.parametrize("path", ["/", "/staff/sign-in"])
def test_a_form_that_is_not_url_encoded_is_refused_with_a_page(
    container: Container, web: TestClient, path: str
) -> None:
    answer = web.post(path, files={"plate": ("a.txt", b"x" * 10)})

    assert answer.status_code == 415
    assert answer.headers["content-type"].startswith("text/html")
    assert "表单" in answer.text


def test_the_signed_in_forms_keep_their_cap_when_chunked(
    container: Container, web: TestClient
) -> None:
    staff(container)
    assert sign_in(web, "officer-1").status_code == 303
    csrf = csrf_in(verify_page(web).text)

    answer = web.post(
        "/staff/verify", content=chunks(f"csrf={csrf}&plates=".encode(), BIG), headers=FORM
    )

    assert answer.status_code == 413
    assert verify_page(web).status_code == 200  # still signed in
