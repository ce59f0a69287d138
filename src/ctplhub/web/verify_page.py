"""``/verify``: anyone checks an e-certificate (DESIGN §6.1) by pasting its token or scanning
its QR code with the phone's camera.

The page works without script: a form POSTs the token (it shows a plate, so it never goes
in a URL) and the answer is rendered on the server, the signature's verdict beside the
registry's live status, so a certificate of a policy surrendered since reads "signature
valid" next to "not covered now" at a glance. ``/static/verify.js`` adds the camera where
the browser has the BarcodeDetector API: it fills the same form and submits it. Nothing
is loaded from another origin, and no inline script runs (the page's own CSP).

The language is every page's (``web/i18n.py``): Chinese by default, ``?lang=`` chooses.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import parse_instant
from ctplhub.services.certificates import CHECKER, CertificateCheck, Certificates
from ctplhub.services.ports import Reader
from ctplhub.web.formatting import STATUS_ICON, STATUS_TONE
from ctplhub.web.i18n import render_page
from ctplhub.web.inline_css import VERIFY_STYLE_SRC
from ctplhub.web.pages import FormRefused, read_form, static_file

_MAX_FORM_BYTES = 8192  # a token is ~450 characters; url-encoding at most triples it

# Stricter than the pages' default: our own script only, the camera's stream for <video>.
_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'self'; style-src {VERIFY_STYLE_SRC}; "
        "img-src 'self' data:; "
        "media-src 'self' mediastream: blob:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self)",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _instants(check: CertificateCheck) -> dict[str, object]:
    """The signed instants, read back to be shown in the reader's way (the signed text
    is RFC 3339 in Beijing time)."""
    if check.certificate is None:
        return {}
    c = check.certificate.certificate
    try:
        return {
            name: parse_instant(getattr(c, name), name)
            for name in ("coverage_start", "coverage_end", "issued_at")
        }
    except DomainError:
        return {}


def _render(
    request: Request,
    *,
    check: CertificateCheck | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render_page(
        request,
        "verify.html",
        status_code=status_code,
        headers=_HEADERS,
        check=check,
        instants=_instants(check) if check else {},
        refused=refused,
        tone=STATUS_TONE,
        icon=STATUS_ICON,
    )


def build_router(certificates: Certificates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/verify", response_class=HTMLResponse)
    async def verify_form(request: Request) -> Response:
        return _render(request)

    @router.post("/verify", response_class=HTMLResponse)
    async def verify_answer(request: Request) -> Response:
        try:
            form = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refused:
            return _render(request, refused="form", status_code=refused.status_code)
        token = form.get("token")
        reader = Reader(CHECKER.actor, CHECKER.role, CHECKER.purpose)
        try:
            check = await certificates.check(token if isinstance(token, str) else "", reader)
        except DomainError:  # not a token at all: invalid_token
            return _render(request, refused="token", status_code=400)
        return _render(request, check=check)

    @router.get("/static/verify.js")
    async def script() -> Response:
        return static_file("verify.js")

    @router.get("/static/verify.css")
    async def stylesheet() -> Response:
        return static_file("verify.css")

    return router
