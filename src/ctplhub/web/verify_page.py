"""``/verify``: anyone checks an e-certificate (DESIGN §6.1) by pasting its token or scanning
its QR code with the phone's camera.

The page works without script: a form POSTs the token (it shows a plate, so it never goes
in a URL) and the answer is rendered on the server, the signature's verdict beside the
registry's live status, so a certificate of a policy surrendered since reads "signature
valid" next to "not covered now" at a glance. ``/static/verify.js`` adds the camera where
the browser has the BarcodeDetector API: it fills the same form and submits it. Nothing
is loaded from another origin, and no inline script runs (the page's own CSP).

Chinese by default; ``?lang=en`` or ``?lang=zh`` chooses and is remembered in a cookie,
otherwise ``Accept-Language`` decides (DESIGN §3, pages).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader
from starlette.responses import HTMLResponse, Response

from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, parse_instant
from ctplhub.services.certificates import CHECKER, CertificateCheck, Certificates
from ctplhub.services.ports import Reader
from ctplhub.web.formatting import STATUS_TONE, beijing
from ctplhub.web.pages import FormRefused, read_form, static_file

_TEMPLATES = Environment(
    loader=PackageLoader("ctplhub.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_MAX_FORM_BYTES = 8192  # a token is ~450 characters; url-encoding at most triples it
LANG_COOKIE = "lang"
_LANGS = ("zh", "en")

# Stricter than the pages' default: our own script only, the camera's stream for <video>.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' mediastream: blob:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self)",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_STATUS_EN = {
    "RENEWED": "Renewed",
    "ACTIVE": "Active",
    "EXPIRING_SOON": "Expiring soon",
    "PENDING_START": "Not yet started",
    "LAPSED": "Lapsed",
    "NO_RECORD": "No record",
}


@dataclass(frozen=True, slots=True)
class CheckView:
    """One check, ready to print in the page's language."""

    valid: bool
    facts: list[tuple[str, str]]
    live_known: bool
    live_covered: bool
    live_status: str
    live_status_text: str
    live_tone: str
    live_as_of: str


def choose_language(request: Request) -> tuple[str, bool]:
    """(language, whether to remember it): ``?lang=`` first, then the cookie, then
    ``Accept-Language`` (zh unless English is preferred over Chinese), else zh."""
    asked = request.query_params.get("lang", "")
    if asked in _LANGS:
        return asked, True
    kept = request.cookies.get(LANG_COOKIE, "")
    if kept in _LANGS:
        return kept, False
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh") or tag == "*":
            return "zh", False
        if tag.startswith("en"):
            return "en", False
    return "zh", False


def _instant(text: str, lang: str) -> str:
    """A signed instant as the reader reads it: 年月日 in Beijing time for Chinese."""
    if lang != "zh":
        return text
    try:
        return beijing(parse_instant(text, "instant"))
    except DomainError:
        return text


def _view(check: CertificateCheck, lang: str) -> CheckView:
    facts: list[tuple[str, str]] = []
    if check.certificate is not None:
        c = check.certificate.certificate
        labels = (
            ("号牌", "Plate", c.plate),
            ("车架号", "VIN", c.vin_masked),
            ("保险公司", "Insurer", c.insurer_code),
            ("保单号", "Policy no.", c.policy_no_masked),
            ("保险起期", "Cover from", _instant(c.coverage_start, lang)),
            ("保险止期", "Cover until", _instant(c.coverage_end, lang)),
            ("出具时间", "Issued at", _instant(c.issued_at, lang)),
            ("凭证编号", "Certificate id", c.cert_id),
        )
        facts = [(zh if lang == "zh" else en, value) for zh, en, value in labels]
    live = check.live
    if live is None:
        return CheckView(check.valid, facts, False, False, "", "", "grey", "")
    text = live.status.text_zh if lang == "zh" else _STATUS_EN[live.status.value]
    return CheckView(
        check.valid,
        facts,
        True,
        live.covered,
        live.status.value,
        text,
        STATUS_TONE[live.status.value],
        beijing(live.as_of) if lang == "zh" else format_instant(live.as_of),
    )


def _render(
    request: Request,
    *,
    check: CheckView | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang, remember = choose_language(request)
    html = _TEMPLATES.get_template("verify.html").render(lang=lang, check=check, refused=refused)
    response = HTMLResponse(
        html, status_code=status_code, headers={**_HEADERS, "Cache-Control": "no-store"}
    )
    if remember:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            samesite="lax",
            secure=request.url.scheme == "https",
            httponly=True,
        )
    return response


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
        lang, _ = choose_language(request)
        return _render(request, check=_view(check, lang))

    @router.get("/static/verify.js")
    async def script() -> Response:
        return static_file("verify.js")

    @router.get("/static/verify.css")
    async def stylesheet() -> Response:
        return static_file("verify.css")

    return router
