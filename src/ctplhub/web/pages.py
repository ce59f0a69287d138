"""Owner-facing web pages: "is my 交强险 renewed, and until when?" (DESIGN §1, §2.5, §3.1).

``/`` is the query form, the chat box and, after a POST, the answer: status in words,
colour and icon, the facts, and the coverage timeline drawn as SVG on the server. The
form always POSTs because both fields are personal data and must never sit in a URL, a
browser history or a shared link (DESIGN §3); answers are ``no-store`` so a shared phone
or a proxy does not keep them, and the VIN tail is never written back into the page.

The chat box posts ``/ask``: ``/static/chat.js`` sends the question to ``POST /v1/ask``
and shows the answer in place; without script, the same form POSTs here and the page
comes back with the answer, from the same assistant and the same verified look-up.

Words come from the message catalogues in the reader's language (``web/i18n.py``); this
module hands the templates codes and typed values only. The other owner pages are in
``web/owner_pages.py``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import FileResponse, HTMLResponse, Response

from ctplhub.domain.errors import (
    DomainError,
    InvalidPlate,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from ctplhub.security.throttle import Throttle, guarded_lookup
from ctplhub.services.assistant import Assistant, Reply
from ctplhub.services.check_coverage import OWNER, CheckCoverage, CoverageQuery, FullAnswer
from ctplhub.services.ports import Reader
from ctplhub.web.formatting import describe_answer
from ctplhub.web.i18n import render_page
from ctplhub.web.inline_css import SITE_STYLE_SRC

STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

ASK_PURPOSE = "assistant_query"  # the same purpose as ``POST /v1/ask``'s verified question


def static_file(name: str) -> FileResponse:
    """One of our own static files (no page loads anything from another origin, §3):
    public, cached five minutes, never sniffed into another type."""
    return FileResponse(
        STATIC / name,
        media_type=_STATIC_TYPES[Path(name).suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


# A plate and six characters fit in far less; anything bigger is not our form.
_MAX_FORM_BYTES = 4096
_MAX_FORM_FIELDS = 20  # every page form has a handful

# The pages load nothing from elsewhere, so the policy can be strict: our own script (the
# chat box), which may call our own API; the icon is a data: URL.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; "
        f"style-src {SITE_STYLE_SRC}; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
NO_STORE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class PageError:
    """Why a form could not be answered, as a code the templates word
    (``_macros.html``, ``error_words``); ``detail`` is the English small print."""

    code: str
    detail: str | None = None
    retry_after_s: int | None = None


_FORM_REFUSED = {413: PageError("too_large"), 415: PageError("form")}


def page_error(error: DomainError) -> tuple[PageError, int]:
    if isinstance(error, InvalidPlate):
        return PageError("invalid_plate", error.message), 400
    if isinstance(error, NotFound):
        # Same words for an unknown plate and a wrong VIN tail: the page must not tell a
        # guesser which of the two was right (DESIGN §3, coverage query).
        return PageError("not_found"), 404
    if isinstance(error, RateLimited):
        # Same budgets as the API (DESIGN §5.3): a wrong tail counts here as it does there.
        return PageError("rate_limited", retry_after_s=error.retry_after_s), 429
    if isinstance(error, ValidationFailed):
        code = "bad_address" if error.code == "invalid_address" else "validation_failed"
        return PageError(code, error.message), 400
    return PageError(error.code), 409 if error.code == "not_covered" else 400


def refused_page(
    request: Request, template: str, failure: DomainError, **context: Any
) -> HTMLResponse:
    """``template`` again with the error worded; a spent budget says when to retry."""
    error, status_code = page_error(failure)
    page = render_page(
        request, template, status_code=status_code, headers=NO_STORE, error=error, **context
    )
    if isinstance(failure, RateLimited):
        page.headers["Retry-After"] = str(failure.retry_after_s)
    return page


def check_vin_tail(raw: str) -> None:
    tail = "".join(unicodedata.normalize("NFKC", raw).split())
    if len(tail) != 6 or not (tail.isascii() and tail.isalnum()):
        raise ValidationFailed("vin_last6 must be the last 6 characters of the VIN")


class FormRefused(Exception):
    """A form body the pages do not read: ``413`` over the cap, ``415`` not url-encoded."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"form refused with {status_code}")
        self.status_code = status_code


async def read_form(request: Request, max_bytes: int) -> FormData:
    """The fields of an ``application/x-www-form-urlencoded`` body (what every page form
    posts) of at most ``max_bytes``, or :class:`FormRefused`.

    The cap holds for the bytes received, not for a declared ``Content-Length`` alone: a
    chunked body declares none, so the body is streamed and reading stops one chunk past
    the cap. Parsing the bytes held, rather than ``request.form()``, also means no
    multipart upload is ever spooled to a file: other content types are refused.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise FormRefused(415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FormRefused(413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FormRefused(413)
    try:
        fields = parse_qsl(
            body.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            errors="replace",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:  # more fields than any page's form has
        raise FormRefused(413) from None
    return FormData([(name, value) for name, value in fields])


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def owner_reader(request: Request, purpose: str) -> Reader:
    """An anonymous owner's read for ``purpose``, tied to the request's log line as the
    API's reads are (the request id the observability middleware set)."""
    found = request.scope.get("ctplhub.request_id")
    return Reader("anonymous", "owner", purpose, found if isinstance(found, str) else None)


@dataclass(frozen=True, slots=True)
class ChatView:
    question: str
    answer: str
    language: str


def build_router(coverage: CheckCoverage, *, throttle: Throttle, assistant: Assistant) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def query_form(request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        return render_page(request, "index.html", headers=headers)

    @router.post("/", response_class=HTMLResponse)
    async def query_answer(request: Request) -> Response:
        try:
            form = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refused:
            error = _FORM_REFUSED[refused.status_code]
            return render_page(
                request, "index.html", status_code=refused.status_code, headers=NO_STORE,
                error=error,
            )  # fmt: skip
        plate, vin_tail = form_text(form, "plate")[:32], form_text(form, "vin_last6")
        reader = owner_reader(request, OWNER.purpose)
        try:
            check_vin_tail(vin_tail)
            found = await guarded_lookup(
                throttle,
                client_of(request),
                plate,
                lambda: coverage.query_with_history(
                    CoverageQuery(plate=plate, vin_last6=vin_tail), reader
                ),
                verified=True,
            )
        except DomainError as failure:
            # The plate comes back so the owner can correct it; the VIN tail never does.
            return refused_page(request, "index.html", failure, plate=plate)
        answer = describe_answer(found)
        return render_page(
            request, "index.html", headers=NO_STORE, plate=answer.plate, answer=answer
        )

    @router.get("/ask", response_class=HTMLResponse)
    async def ask_form(request: Request) -> Response:
        """Where the answer page's language switch leads: the query page and its chat box."""
        return render_page(request, "index.html", headers=NO_STORE)

    @router.post("/ask", response_class=HTMLResponse)
    async def ask(request: Request) -> Response:
        """The chat box without script: the assistant's answer on the query page."""
        try:
            form = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refused:
            return render_page(
                request, "index.html", status_code=refused.status_code, headers=NO_STORE,
                chat_error=_FORM_REFUSED[refused.status_code],
            )  # fmt: skip
        question = form_text(form, "question")
        tail = form_text(form, "vin_last6").strip() or None
        try:
            plan = assistant.plan(question, tail)
            if plan.lookup is None:
                assert plan.reply is not None
                reply: Reply = plan.reply
            else:
                lookup = plan.lookup
                reader = owner_reader(request, ASK_PURPOSE)
                found = await guarded_lookup(
                    throttle,
                    client_of(request),
                    lookup.plate,
                    lambda: coverage.query(lookup, reader),
                    verified=True,
                )
                assert isinstance(found, FullAnswer)  # a factor was given: full or 404
                reply = assistant.answer(plan, found)
        except DomainError as failure:
            error, status_code = page_error(failure)
            if not question.strip():
                error = PageError("question")
            return render_page(
                request, "index.html", status_code=status_code, headers=NO_STORE,
                chat_error=error,
            )  # fmt: skip
        chat = ChatView(question[:500], reply.answer, reply.language)
        return render_page(request, "index.html", headers=NO_STORE, chat=chat)

    @router.get("/static/site.css")
    async def stylesheet() -> Response:
        return static_file("site.css")

    @router.get("/static/chat.js")
    async def chat_script() -> Response:
        return static_file("chat.js")

    return router
