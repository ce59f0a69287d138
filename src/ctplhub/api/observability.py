"""What every request leaves behind: a request id, one log line, metrics, and for a
failure nobody foresaw, its stack trace and an answer in the one error shape.

A thin ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``), outermost but
for Starlette's own error guard. It logs the route *template*, never the path or a body:
paths could carry identifiers, and bodies carry personal data.

- ``X-Request-ID``: taken from the request when it is a short token a proxy could have
  set (letters, digits, ``.-_:``, at most 64), else made here; echoed in every answer, 5xx
  included, and in every log line of the request, so an operator can find the trace of
  the error a user quotes.
- One JSON log line per request (``event: "request"``): method, route, status, duration.
- An exception that reaches here is logged with its stack trace (frames and exception
  types, not messages, which may carry personal data) and answered ``500
  internal_error``, naming the request id and nothing else.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctplhub.logs import safe_traceback
from ctplhub.services.ids import new_request_id

REQUESTS = Counter(
    "ctplhub_http_requests_total", "HTTP requests by route and status", ["route", "status"]
)
LATENCY = Histogram(
    "ctplhub_http_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

_HEADER = b"x-request-id"
_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_log = structlog.get_logger("ctplhub.http")


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == _HEADER and _GIVEN_ID.fullmatch(value):
            return bytes(value)
    return new_request_id().encode()


class _RouteMetrics:
    """The metric children of one (route, status): looked up once, not per request."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:
            children = (REQUESTS.labels(route, str(status)), LATENCY.labels(route))
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class RequestObservability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._metrics = _RouteMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        id_header = (_HEADER, request_id)
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            status = 500
            _log.error(
                "unhandled_error",
                request_id=request_id.decode(),
                method=scope["method"],
                route=_route(scope),
                error_type=type(error).__qualname__,
                traceback=safe_traceback(error),  # no exception messages: they carry data
            )
            if not responded:
                await _internal_error(send, request_id)
        finally:
            route = _route(scope)
            seconds = time.perf_counter() - started
            self._metrics.observe(route, status, seconds)
            _log.info(
                "request",
                request_id=request_id.decode(),
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/insurers/{code}/sync``), never the raw path:
    it is safe to log and keeps the metrics' cardinality bounded."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def _internal_error(send: Send, request_id: bytes) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "internal_error",
                "message": "an unexpected error occurred; quote the request id "
                f"{request_id.decode()} when you report it",
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (_HEADER, request_id),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
