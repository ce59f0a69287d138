"""The owner's dispute pages (issue 11 item 1; DESIGN §10): "the registry is wrong about
my vehicle", filed from a phone, then followed.

- ``/dispute``: the plate, the VIN tail, what is wrong (``renewal_missing``,
  ``wrong_data``, ``other``) and a description. The answer names the insurer the
  dispute went to, the deadline, and the dispute's number and follow-up code, shown once
  (only the code's hash is kept; losing it means filing again, which the page says).
- ``/dispute/status``: the number and the code → the status and its history.

Both POST (the code is as good as a password, and the VIN tail is personal data: neither
sits in a URL, §3), answer ``no-store``, and call the same ``Disputes`` use case as
``/v1/disputes`` under the same budgets and access-log purposes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from ctplhub.domain.errors import DomainError, NotFound, ValidationFailed
from ctplhub.security.throttle import Throttle, guarded_lookup
from ctplhub.services.check_coverage import CoverageQuery
from ctplhub.services.disputes import (
    FILE_PURPOSE,
    STATUS_PURPOSE,
    DisputeRequest,
    Disputes,
)
from ctplhub.web.i18n import render_page
from ctplhub.web.pages import (
    NO_STORE,
    FormRefused,
    PageError,
    check_vin_tail,
    client_of,
    form_text,
    owner_reader,
    read_form,
    refused_page,
)

_MAX_FORM_BYTES = 8192  # a description of up to 2,000 characters, percent-encoded
_KINDS = ("renewal_missing", "wrong_data", "other")
_FILE, _STATUS = "dispute.html", "dispute_status.html"


def _number(raw: str) -> int | None:
    text = raw.strip().lstrip("#")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def build_router(disputes: Disputes, throttle: Throttle) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def refused(template: str, failure: DomainError, request: Request, **context: Any) -> Response:
        if isinstance(failure, ValidationFailed):  # the dispute's own fields, worded
            return render_page(
                request, template, status_code=400, headers=NO_STORE,
                error=PageError("dispute_form", failure.message), **context,
            )  # fmt: skip
        return refused_page(request, template, failure, **context)

    async def form(request: Request, template: str, **context: Any) -> dict[str, str] | Response:
        try:
            got = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refusal:
            code = "too_large" if refusal.status_code == 413 else "form"
            return render_page(
                request, template, status_code=refusal.status_code, headers=NO_STORE,
                error=PageError(code), **context,
            )  # fmt: skip
        return {name: form_text(got, name) for name in got}

    @router.get("/dispute", response_class=HTMLResponse)
    async def blank(request: Request) -> Response:
        return render_page(request, _FILE, headers=NO_STORE, plate="", kind="", message="")

    @router.post("/dispute", response_class=HTMLResponse)
    async def file(request: Request) -> Response:
        got = await form(request, _FILE, plate="", kind="", message="")
        if isinstance(got, Response):
            return got
        plate, kind = got.get("plate", "")[:32], got.get("kind", "")
        message = got.get("message", "")
        context: dict[str, Any] = {
            "plate": plate,
            "kind": kind if kind in _KINDS else "",
            "message": message,
        }
        try:
            check_vin_tail(got.get("vin_last6", ""))
            wanted = DisputeRequest(
                CoverageQuery(plate=plate, vin_last6=got.get("vin_last6", "")), kind, message
            )
            filed = await guarded_lookup(
                throttle,
                client_of(request),
                plate,
                lambda: disputes.file(wanted, owner_reader(request, FILE_PURPOSE)),
                verified=True,
            )
        except DomainError as failure:
            return refused(_FILE, failure, request, **context)
        return render_page(request, _FILE, headers=NO_STORE, filed=filed, **context)

    @router.get("/dispute/status", response_class=HTMLResponse)
    async def status_blank(request: Request) -> Response:
        return render_page(request, _STATUS, headers=NO_STORE, number="")

    @router.post("/dispute/status", response_class=HTMLResponse)
    async def status(request: Request) -> Response:
        got = await form(request, _STATUS, number="")
        if isinstance(got, Response):
            return got
        raw = got.get("dispute_id", "")[:24]
        number = _number(raw)
        reader = owner_reader(request, STATUS_PURPOSE)
        try:
            if number is None:
                raise NotFound("no dispute with this number and code")
            found = await run_in_threadpool(
                disputes.status, number, got.get("token", "").strip(), reader
            )
        except NotFound:
            return render_page(
                request, _STATUS, status_code=404, headers=NO_STORE,
                error=PageError("dispute_not_found"), number=raw,
            )  # fmt: skip
        except DomainError as failure:
            return refused(_STATUS, failure, request, number=raw)
        return render_page(request, _STATUS, headers=NO_STORE, found=found, number=raw)

    return router
