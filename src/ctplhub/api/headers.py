"""Security headers on every answer, and CORS closed unless origins are configured.

A thin ASGI middleware, outermost in the app (``api/app.py``), so the 500 of an
unforeseen failure carries the headers too. It adds header tuples built once, at start-up,
to each answer's start message: a scan of the few headers an answer already has and a
list concatenation, nothing per request that allocates more.

- Every answer: ``X-Content-Type-Options: nosniff`` (no MIME sniffing of a JSON body into
  HTML) and ``Referrer-Policy: no-referrer`` (a page's URL never leaves with a link).
- Pages (``text/html``): a Content-Security-Policy that allows scripts, styles and images
  from our own origin only, never inline script, never framing (``frame-ancestors``
  'none' plus ``X-Frame-Options: DENY`` for older browsers). An answer's own header of the
  same name wins, so a page can be stricter.
- API answers: a CSP that forbids everything (a JSON body opened in a browser runs and
  loads nothing) and ``Cache-Control: no-store`` unless the route set its own caching:
  answers carry personal data by default, and only a route that knows its answer is
  public (the JWKS, the stylesheet) opts in to caching.
- ``/docs`` is a page like the others (``api/docs_page.py``): no script, nothing from
  another origin.

CORS: browsers on other origins are refused by default (no ``Access-Control-Allow-Origin``
is ever sent); ``CTPLHUB_CORS_ORIGINS`` lists the origins that may call the API from a
browser, without credentials (docs/DECISIONS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"

_EVERY_ANSWER: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_PAGE: tuple[Header, ...] = (
    *_EVERY_ANSWER,
    (b"content-security-policy", PAGE_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
_API: tuple[Header, ...] = (
    *_EVERY_ANSWER,
    (b"content-security-policy", API_CSP.encode()),
    (b"cache-control", b"no-store"),
)

_NAMES = frozenset(name for name, _ in (*_PAGE, *_API))

# Methods and request headers a browser on an allowed origin may use; what it may read.
CORS_METHODS = ("GET", "POST", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
CORS_EXPOSED = ("X-Request-ID", "Retry-After")


def _missing(headers: Sequence[Header], extra: tuple[Header, ...]) -> list[Header]:
    """``extra`` less the headers the answer already names (the route's choice wins)."""
    present = {name for name, _ in headers}
    return [header for header in extra if header[0] not in present]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The start message is built afresh for each answer: extended in place.
                message["headers"] = secured(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secured(headers: Sequence[Header]) -> list[Header]:
    """An answer's headers plus the security headers above: those of a page for
    ``text/html``, else those of an API answer; a header the route set itself wins."""
    kind = b""
    own = False  # the route set one of these headers itself
    for name, value in headers:
        if name == b"content-type":
            kind = value
        elif name in _NAMES:
            own = True
    extra = _PAGE if kind.startswith(b"text/html") else _API
    return [*headers, *(_missing(headers, extra) if own else extra)]


def harden(app: ASGIApp, cors_origins: Sequence[str]) -> ASGIApp:
    """``app`` behind the security headers, and behind CORS when origins are listed."""
    if cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(cors_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            allow_credentials=False,  # staff session cookies never travel cross-origin
            max_age=600,
        )
    return SecurityHeaders(app)
