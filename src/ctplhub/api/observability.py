"""What every request leaves behind: a request id, one log line, metrics, and for a
failure nobody foresaw, its stack trace and an answer in the one error shape.

A thin ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``), the outermost
layer of the app (``api/app.py``). It logs the route *template*, never the path or a body:
paths could carry identifiers, and bodies carry personal data.

- ``X-Request-ID``: taken from the request when it is a short token a proxy could have
  set (letters, digits, ``.-_:``, at most 64), else made here; echoed in every answer, 5xx
  included, and in every log line of the request, so an operator can find the trace of
  the error a user quotes.
- One JSON log line per request (``event: "request"``): method, route, status, duration.
- An exception that reaches here is logged with its stack trace (frames and exception
  types, not messages, which may carry personal data) and answered ``500
  internal_error``, naming the request id and nothing else; a database that is full or
  restarting is a warning without the trace, answered ``503 storage_unavailable``.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left
from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctplhub.api.errors import REQUEST_ID, failure_response
from ctplhub.logs import info_line, safe_traceback
from ctplhub.services.ids import new_request_id
from ctplhub.store.failures import storage_unavailable

_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_BOUNDS = (*map(floatToGoString, _BUCKETS), "+Inf")  # as prometheus_client writes them

_HEADER = b"x-request-id"
_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_log = structlog.get_logger("ctplhub.http")


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == _HEADER and _GIVEN_ID.fullmatch(value):
            return bytes(value)
    return new_request_id().encode()


class RequestMetrics:
    """Requests by route and status, and their latency by route, for ``/metrics``.

    Counted in plain integers on the event loop and turned into Prometheus families only
    when scraped: ``prometheus_client``'s own counters take a lock per update, which cost
    as much as the rest of this middleware. Registered once per process.
    """

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, tuple[list[int], list[float]]] = {}  # buckets, [sum]

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        held = self._latency.get(route)
        if held is None:
            held = self._latency[route] = ([0] * (len(_BUCKETS) + 1), [0.0])
        held[0][bisect_left(_BUCKETS, seconds)] += 1
        held[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "ctplhub_http_requests", "HTTP requests by route and status", labels=["route", "status"]
        )
        for (route, status), count in sorted(self._requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "ctplhub_http_request_seconds", "HTTP request latency by route", labels=["route"]
        )
        for route, (counts, total) in sorted(self._latency.items()):
            cumulative, running = [], 0
            for bound, count in zip(_BOUNDS, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            latency.add_metric([route], cumulative, total[0])
        yield latency


METRICS = RequestMetrics()
REGISTRY.register(METRICS)


def begin_request(scope: Scope) -> tuple[str, tuple[bytes, bytes]]:
    """The request's id, left in its scope (``REQUEST_ID``), and the header that echoes it."""
    request_id = _request_id(scope)
    scope[REQUEST_ID] = text_id = request_id.decode()
    return text_id, (_HEADER, request_id)


def log_failure(scope: Scope, request_id: str, error: Exception) -> None:
    """An exception no handler answered: a warning when the storage is unavailable (an
    outage, expected), else an error with its stack trace."""
    if storage_unavailable(error):  # expected in an outage: no stack trace
        _log.warning(
            "storage_unavailable",
            request_id=request_id,
            method=scope["method"],
            route=_route(scope),
            error_type=type(error).__qualname__,
        )
    else:
        _log.error(
            "unhandled_error",
            request_id=request_id,
            method=scope["method"],
            route=_route(scope),
            error_type=type(error).__qualname__,
            traceback=safe_traceback(error),  # no exception messages: they carry data
        )


def end_request(scope: Scope, request_id: str, status: int, started: float) -> None:
    """The request's metrics and its log line; ``started`` is its ``perf_counter()``."""
    route = _route(scope)
    seconds = time.perf_counter() - started
    METRICS.observe(route, status, seconds)
    info_line(
        _log,
        "request",
        {
            "request_id": request_id,
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )


class RequestObservability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        text_id, id_header = begin_request(scope)
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
            log_failure(scope, text_id, error)
            if not responded:
                await failure_response(error, text_id)(scope, receive, send_with_id)
            elif status < 500:
                status = 500  # the answer had begun and broke off
        finally:
            end_request(scope, text_id, status, started)


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/insurers/{code}/sync``), never the raw path:
    it is safe to log and keeps the metrics' cardinality bounded."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
