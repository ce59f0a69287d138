"""The owner's other pages (issue 11 item 1): the e-certificate with its QR code
(DESIGN §6.1), reminders (§7), "who read my data" (§3, §5.3), and three pages of plain
help: how to renew, questions and answers, and the privacy notice.

Each page that names a vehicle asks for the plate and the VIN tail in a form that POSTs
(personal data never sits in a URL, §3) and answers with the page itself, ``no-store``:
there is no redirect and no server-side state carrying the factor from one page to the
next, so an owner types the six characters again on each (docs/DECISIONS.md, "Owner
pages"). Each calls the same service as its API endpoint, under the same budgets
(``guarded_lookup``) and the same access-log purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import segno
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import parse_instant
from ctplhub.security.throttle import Throttle, guarded_lookup
from ctplhub.services.access_log import VIEW, OwnerAccessLog
from ctplhub.services.certificates import ISSUE_PURPOSE, Certificates
from ctplhub.services.check_coverage import CoverageQuery
from ctplhub.services.reminders import SUBSCRIBE_PURPOSE, Reminders, SubscriptionRequest
from ctplhub.web.i18n import render_page
from ctplhub.web.pages import (
    NO_STORE,
    SECURITY_HEADERS,
    FormRefused,
    PageError,
    check_vin_tail,
    client_of,
    form_text,
    owner_reader,
    read_form,
    refused_page,
)

_MAX_FORM_BYTES = 4096
_QR_ERROR = "m"  # as the API's qr_svg: one QR code holds the whole token
_CHANNELS = ("sms", "email")  # an owner's page offers these; webhooks are for programs
_INFO_PAGES = {"/renew": "renew.html", "/faq": "faq.html", "/privacy": "privacy.html"}
# Private: the language follows a cookie, and a ``?lang=`` answer sets one.
_HELP = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"}


@dataclass(frozen=True, slots=True)
class OwnerForm:
    """The fields the owner pages' forms post (``channel`` and ``address``: reminders)."""

    plate: str
    vin_last6: str
    channel: str
    address: str


@dataclass(frozen=True, slots=True)
class Verified:
    """A page form's plate and VIN tail, the tail checked for shape."""

    plate: str
    query: CoverageQuery


def _verified(plate: str, tail: str) -> Verified:
    check_vin_tail(tail)
    return Verified(plate, CoverageQuery(plate=plate, vin_last6=tail))


def qr_markup(token: str) -> Markup:
    """The token's QR code as inline SVG (segno escapes nothing we pass but the token,
    which is base64url and a dot)."""
    svg = segno.make_qr(token, error=_QR_ERROR).svg_inline(scale=4, omitsize=True)
    return Markup(svg)  # segno's own markup of a base64url token


def build_router(
    *,
    certificates: Certificates,
    reminders: Reminders,
    access_log: OwnerAccessLog,
    throttle: Throttle,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def form_page(template: str) -> None:
        @router.get(f"/{template.removesuffix('.html').replace('_', '-')}")
        async def blank(request: Request) -> Response:
            return render_page(request, template, headers=NO_STORE, plate="")

    for template in ("certificate.html", "subscribe.html", "who_read.html"):
        form_page(template)

    async def fields(request: Request, template: str) -> OwnerForm | Response:
        try:
            form = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refused:
            code = "too_large" if refused.status_code == 413 else "form"
            return render_page(
                request, template, status_code=refused.status_code, headers=NO_STORE,
                error=PageError(code), plate="",
            )  # fmt: skip
        return OwnerForm(
            form_text(form, "plate")[:32],
            form_text(form, "vin_last6"),
            form_text(form, "channel"),
            form_text(form, "address"),
        )

    @router.post("/certificate", response_class=HTMLResponse)
    async def certificate(request: Request) -> Response:
        got = await fields(request, "certificate.html")
        if isinstance(got, Response):
            return got
        plate = got.plate
        reader = owner_reader(request, ISSUE_PURPOSE)
        try:
            asked = _verified(plate, got.vin_last6)
            sealed = await guarded_lookup(
                throttle,
                client_of(request),
                plate,
                lambda: certificates.issue(asked.query, reader),
                verified=True,
            )
        except DomainError as failure:
            return refused_page(request, "certificate.html", failure, plate=plate)
        c = sealed.certificate
        period = tuple(
            parse_instant(v, "instant") for v in (c.coverage_start, c.coverage_end, c.issued_at)
        )
        return render_page(
            request,
            "certificate.html",
            headers=NO_STORE,
            plate=c.plate,
            issued=sealed,
            period=period,
            qr=qr_markup(sealed.token),
        )

    @router.post("/subscribe", response_class=HTMLResponse)
    async def subscribe(request: Request) -> Response:
        got = await fields(request, "subscribe.html")
        if isinstance(got, Response):
            return got
        plate = got.plate
        channel = got.channel if got.channel in _CHANNELS else "sms"
        reader = owner_reader(request, SUBSCRIBE_PURPOSE)
        try:
            asked = _verified(plate, got.vin_last6)
            wanted = SubscriptionRequest(asked.query, channel, got.address)
            made = await guarded_lookup(
                throttle,
                client_of(request),
                plate,
                lambda: reminders.subscribe(wanted, reader),
                verified=True,
            )
        except DomainError as failure:
            return refused_page(request, "subscribe.html", failure, plate=plate, channel=channel)
        return render_page(
            request, "subscribe.html", headers=NO_STORE, plate=plate, made=made, channel=channel
        )

    @router.post("/who-read", response_class=HTMLResponse)
    async def who_read(request: Request) -> Response:
        got = await fields(request, "who_read.html")
        if isinstance(got, Response):
            return got
        plate = got.plate
        try:
            asked = _verified(plate, got.vin_last6)
            entries = await guarded_lookup(
                throttle,
                client_of(request),
                plate,
                lambda: access_log.entries(asked.query, owner_reader(request, VIEW.purpose)),
                verified=True,
            )
        except DomainError as failure:
            return refused_page(request, "who_read.html", failure, plate=plate, entries=None)
        return render_page(request, "who_read.html", headers=NO_STORE, plate=plate, entries=entries)

    def info_page(path: str, template: str) -> None:
        @router.get(path, response_class=HTMLResponse)
        async def page(request: Request) -> Response:
            response = render_page(request, template, headers=_HELP)
            response.headers["Vary"] = "Cookie, Accept-Language"
            return response

    for path, template in _INFO_PAGES.items():
        info_page(path, template)

    return router
