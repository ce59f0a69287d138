"""Staff pages under /staff: sign-in, sign-out and the bulk verify form (DESIGN §1, §5).

- **Sign-in** takes the account name and password (Argon2id, ``security/passwords.py``)
  and opens a server-side session (``services/staff_sessions.py``). The cookie is
  ``HttpOnly``, ``SameSite=Strict``, ``Path=/`` and ``Secure`` with the ``__Host-``
  prefix, except under ``ctplhub demo``, which serves plain http on 127.0.0.1 and sets
  ``CTPLHUB_COOKIE_SECURE=false``.
- **Every POST carries a CSRF token** tied to the session (derived from its id); the
  sign-in form, before any session, ties its token to a short-lived cookie of its own
  (double submit). A missing or wrong token is refused with ``403`` and a page that says
  to reload the form.
- **Sign-in is throttled** per client address and per account, the rules of
  ``security/throttle_rules.py``; a spent budget answers ``429`` with ``Retry-After``,
  even for the right password. Every attempt, right or wrong, counts against both
  *before* the password is checked: guesses sent all at once are counted one by one
  (atomically in Redis, so across processes too) and at most the budget's worth are
  ever checked; after 10 failures in an hour even the right password is refused. The
  price is that successful sign-ins count too (10 an hour per account, where a session
  lasts 8 hours). The account key is the name normalised once (``sign_in_name``: trimmed,
  over 100 characters refused as a failed sign-in without counting), and the sign-in
  looks up exactly that string.
- **Forms are read through a byte cap** (``web/pages.read_form``): chunked bodies too;
  only url-encoded forms are read, others get a ``415`` page.
- **Roles**: the bulk verify page is for police and regulators; anyone else signed in
  gets ``403`` (``role_not_allowed``), anyone not signed in is sent to the sign-in page.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ctplhub.domain.errors import DomainError, RateLimited, Unauthenticated
from ctplhub.security.throttle import (
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_CLIENT,
    Throttle,
    client_bucket,
)
from ctplhub.security.tokens import csrf_token
from ctplhub.services.ports import Reader
from ctplhub.services.staff_sessions import StaffSession, StaffSessions, sign_in_name
from ctplhub.services.verify_bulk import VerifyBulk
from ctplhub.web.i18n import render_page
from ctplhub.web.pages import FormRefused, read_form, static_file
from ctplhub.web.staff_views import (
    MAX_PLATES,
    FormProblem,
    beijing_instant,
    plate_lines,
    result_rows,
)

VERIFY_ROLES = ("police", "regulator")
_MAX_FORM_BYTES = 64 * 1024  # a thousand plates and the form's other fields
_SIGN_IN_COOKIE_S = 3600  # how long a sign-in form stays usable


@dataclass(frozen=True, slots=True)
class Cookies:
    """The two cookies' names and attributes: ``__Host-`` names need ``Secure``."""

    secure: bool
    session_max_age_s: int

    @property
    def session(self) -> str:
        return "__Host-ctplhub-staff" if self.secure else "ctplhub-staff"

    @property
    def sign_in(self) -> str:
        return "__Host-ctplhub-sign-in" if self.secure else "ctplhub-sign-in"

    def set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="strict")


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    # Staff pages show what only a signed-in person may see: never kept by a cache.
    return render_page(
        request, name, status_code=status_code, headers={"Cache-Control": "no-store"}, **context
    )


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _client(request: Request) -> str:
    return client_bucket(request.client.host if request.client is not None else "unknown")


async def _form(request: Request) -> FormData | int:
    """The form's fields, or the status to refuse it with (413 too large, 415 not a
    url-encoded form); read through the byte cap whatever the body's framing."""
    try:
        return await read_form(request, _MAX_FORM_BYTES)
    except FormRefused as refused:
        return refused.status_code


_FORM_ERRORS = {413: "too_large", 415: "form"}  # worded by staff_macros.html


def _refused_form(request: Request, session: StaffSession | None) -> HTMLResponse:
    """The page of a POST whose anti-forgery token is missing or wrong."""
    return _render(request, "staff_refused.html", 403, session=session, reason="csrf_failed")


StaffHandler = Callable[[Request, StaffSession], Awaitable[Response]]


async def signed_in(
    sessions: StaffSessions, cookies: Cookies, request: Request
) -> StaffSession | None:
    """The staff session the request's cookie names, if it is live."""
    session_id = request.cookies.get(cookies.session)
    if not session_id:
        return None
    return await run_in_threadpool(sessions.session, session_id)


def role_page(
    sessions: StaffSessions, cookies: Cookies, roles: Collection[str]
) -> Callable[[StaffHandler], Callable[[Request], Awaitable[Response]]]:
    """Wraps a staff page: signed in with one of ``roles``, or sent to sign in, or
    refused (403). The one guard of every role-limited staff page."""

    def page(handler: StaffHandler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = await signed_in(sessions, cookies, request)
            if session is None:
                return _see_other("/staff/sign-in")
            if session.role not in roles:
                return _render(
                    request, "staff_refused.html", 403, session=session, reason="role_not_allowed"
                )
            return await handler(request, session)

        return guarded

    return page


def build_router(
    sessions: StaffSessions, verify: VerifyBulk, throttle: Throttle, cookies: Cookies
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def current(request: Request) -> StaffSession | None:
        return await signed_in(sessions, cookies, request)

    def sign_in_page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
        secret = secrets.token_urlsafe(32)
        response = _render(
            request, "staff_sign_in.html", status_code, csrf_token=csrf_token(secret), **context
        )
        cookies.set(response, cookies.sign_in, secret, _SIGN_IN_COOKIE_S)
        return response

    @router.get("/staff")
    async def home(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return _see_other("/staff/sign-in")
        return _render(request, "staff_home.html", session=session, verify_roles=VERIFY_ROLES)

    @router.get("/staff/sign-in")
    async def sign_in_form(request: Request) -> Response:
        if await current(request) is not None:
            return _see_other("/staff")
        return sign_in_page(request)

    @router.post("/staff/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        if isinstance(form, int):
            return sign_in_page(request, form, error=_FORM_ERRORS[form])
        secret = request.cookies.get(cookies.sign_in, "")
        if not secret or not secrets.compare_digest(csrf_token(secret), _text(form, "csrf")):
            return sign_in_page(request, 403, error="sign_in_expired", reason="csrf_failed")
        given, password = _text(form, "user"), _text(form, "password")
        # One spelling of the name, from here on: the throttle's key and the look-up.
        name = sign_in_name(given)
        try:
            await throttle.hit(SIGN_IN_PER_CLIENT, _client(request))
            if name is None:  # no account has it: failed, and no account's budget spent
                raise Unauthenticated("no such user name", code="invalid_credentials")
            # Counted before the password is checked: guesses sent at once are each counted.
            await throttle.hit(SIGN_IN_PER_ACCOUNT, name)
            signed_in = await run_in_threadpool(sessions.sign_in, name, password[:1024])
        except RateLimited as limited:
            refused = sign_in_page(
                request,
                429,
                user=name or given[:100],
                error="rate_limited",
                retry_after_s=limited.retry_after_s,
            )
            refused.headers["Retry-After"] = str(limited.retry_after_s)
            return refused
        except Unauthenticated:
            return sign_in_page(request, 401, user=name or given[:100], error="bad_credentials")
        previous = request.cookies.get(cookies.session)
        if previous:  # signing in again (or as someone else) ends the session it replaces
            await run_in_threadpool(sessions.sign_out, previous)
        response = _see_other("/staff")
        cookies.set(response, cookies.session, signed_in.session_id, cookies.session_max_age_s)
        cookies.clear(response, cookies.sign_in)
        return response

    @router.post("/staff/sign-out")
    async def sign_out(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return _see_other("/staff/sign-in")
        form = await _form(request)
        if isinstance(form, int) or not session.csrf_matches(_text(form, "csrf")):
            return _refused_form(request, session)
        await run_in_threadpool(sessions.sign_out, request.cookies[cookies.session])
        response = _see_other("/staff/sign-in")
        cookies.clear(response, cookies.session)
        return response

    verify_page = role_page(sessions, cookies, VERIFY_ROLES)

    async def verify_form(request: Request, session: StaffSession) -> Response:
        return _render(request, "staff_verify.html", session=session, max_plates=MAX_PLATES)

    async def verify_plates(request: Request, session: StaffSession) -> Response:
        form = await _form(request)
        if isinstance(form, int):
            return _render(
                request,
                "staff_verify.html",
                form,
                session=session,
                max_plates=MAX_PLATES,
                error="too_many_plates" if form == 413 else _FORM_ERRORS[form],
            )
        if not session.csrf_matches(_text(form, "csrf")):
            return _refused_form(request, session)
        plates_text, at_text = _text(form, "plates"), _text(form, "at")

        def refused(message: str) -> HTMLResponse:  # the form again, as typed, with why
            return _render(
                request,
                "staff_verify.html",
                400,
                session=session,
                max_plates=MAX_PLATES,
                plates=plates_text,
                at=at_text,
                error=message,
            )

        try:
            at = beijing_instant(at_text)
            items = [{"plate": plate, "at": at} for plate in plate_lines(plates_text)]
        except FormProblem as problem:
            return refused(problem.code)
        reader = Reader(
            session.user, session.role, "bulk_verify", request.scope.get("ctplhub.request_id")
        )
        try:
            results = await verify.verify(items, reader=reader)
        except DomainError as failure:  # an item's own error never gets here
            return refused(failure.message)
        return _render(
            request,
            "staff_verify.html",
            session=session,
            max_plates=MAX_PLATES,
            plates=plates_text,
            at=at_text,
            rows=result_rows(results),
        )

    @router.get("/static/staff.css")
    async def stylesheet() -> Response:
        return static_file("staff.css")

    router.add_api_route("/staff/verify", verify_page(verify_form), methods=["GET"])
    router.add_api_route("/staff/verify", verify_page(verify_plates), methods=["POST"])
    return router
