"""Owner-facing web pages: "is my 交强险 renewed, and until when?" (DESIGN §1, §2.5, §3.1).

One page: a form for the plate and the VIN tail (车架号后六位), and the answer on the same
page. The form always POSTs because both fields are personal data and must never sit in a
URL, a browser history or a shared link (DESIGN §3); answers are ``no-store`` so a shared
phone or a proxy does not keep them, and the VIN tail is never written back into the page.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader
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
from ctplhub.services.check_coverage import CheckCoverage, CoverageQuery, FullAnswer
from ctplhub.web.formatting import AnswerView, describe_answer

STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def static_file(name: str) -> FileResponse:
    """One of our own static files (no page loads anything from another origin, §3):
    public, cached five minutes, never sniffed into another type."""
    return FileResponse(
        STATIC / name,
        media_type=_STATIC_TYPES[Path(name).suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


_TEMPLATES = Environment(
    loader=PackageLoader("ctplhub.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

# A plate and six characters fit in far less; anything bigger is not our form.
_MAX_FORM_BYTES = 4096
_MAX_FORM_FIELDS = 20  # every page form has a handful

# The page loads nothing from elsewhere, so the policy can be strict; the icon is a data: URL.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class PageError:
    """What the owner reads when a query cannot be answered; ``detail`` is the small print."""

    title: str
    detail: str | None = None


_FORM_REFUSED = {
    413: PageError("提交的内容过长，请只填写号牌和车架号后六位"),
    415: PageError("无法识别提交的表单，请在本页的表单中填写后重新查询"),
}


def _page_error(error: DomainError) -> tuple[PageError, int]:
    if isinstance(error, InvalidPlate):
        return PageError("号牌格式不正确，请核对后重新输入", error.message), 400
    if isinstance(error, NotFound):
        # Same words for an unknown plate and a wrong VIN tail: the page must not tell a
        # guesser which of the two was right (DESIGN §3, coverage query).
        return PageError("未找到匹配的车辆：请核对号牌和车架号后六位"), 404
    if isinstance(error, RateLimited):
        # Same budgets as the API (DESIGN §5.3): a wrong tail counts here as it does there.
        return PageError(f"查询过于频繁，请在 {error.retry_after_s} 秒后再试"), 429
    if isinstance(error, ValidationFailed):
        return PageError("输入有误：请填写号牌和车架号后六位（6 位字母或数字）", error.message), 400
    return PageError("暂时无法完成查询，请稍后再试"), 400


def _check_vin_tail(raw: str) -> None:
    tail = "".join(unicodedata.normalize("NFKC", raw).split())
    if len(tail) != 6 or not (tail.isascii() and tail.isalnum()):
        raise ValidationFailed("vin_last6 must be the last 6 characters of the VIN")


def _render(
    *,
    plate: str = "",
    answer: AnswerView | None = None,
    error: PageError | None = None,
    status_code: int = 200,
    cache: str = "no-store",
) -> HTMLResponse:
    html = _TEMPLATES.get_template("index.html").render(plate=plate, answer=answer, error=error)
    headers = {**_SECURITY_HEADERS, "Cache-Control": cache}
    return HTMLResponse(html, status_code=status_code, headers=headers)


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


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def build_router(coverage: CheckCoverage, *, throttle: Throttle) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def query_form() -> Response:
        return _render(cache="no-cache")

    @router.post("/", response_class=HTMLResponse)
    async def query_answer(request: Request) -> Response:
        try:
            form = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refused:
            error = _FORM_REFUSED[refused.status_code]
            return _render(error=error, status_code=refused.status_code)
        plate, vin_tail = _text(form, "plate")[:32], _text(form, "vin_last6")
        try:
            _check_vin_tail(vin_tail)
            answer = await guarded_lookup(
                throttle,
                request.client.host if request.client else "unknown",
                plate,
                lambda: coverage.query(CoverageQuery(plate=plate, vin_last6=vin_tail)),
                verified=True,
            )
        except DomainError as failure:
            error, status_code = _page_error(failure)
            # The plate comes back so the owner can correct it; the VIN tail never does.
            page = _render(plate=plate, error=error, status_code=status_code)
            if isinstance(failure, RateLimited):
                page.headers["Retry-After"] = str(failure.retry_after_s)
            return page
        assert isinstance(answer, FullAnswer)  # a factor was given, so the answer is full
        return _render(plate=answer.plate.display, answer=describe_answer(answer))

    @router.get("/static/site.css")
    async def stylesheet() -> Response:
        return static_file("site.css")

    return router
