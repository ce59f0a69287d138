"""The hottest routes, answered with as little framework as possible.

``RequestRoute``: a route whose endpoint takes the request and returns a response. Our
API endpoints read, check and decode their bodies themselves (size limits before
parsing, one error shape, signatures over the raw bytes), so FastAPI's per-request
dependency solving, body handling and response validation do nothing for them but cost
CPU on the hottest path: about a tenth of a verified query's server time. A route of
this class calls the endpoint with the ``Request`` and sends what it returns; the
OpenAPI document is FastAPI's as before. Path parameters are in ``request.path_params``.

``DirectRoutes``: the routes of that class with a fixed path (the coverage query and
bulk verify) are answered ahead of the whole middleware stack, by one layer that does for
them what the stack's layers do for every other request, with the same functions: the
request id (``observability.begin_request``), the endpoint, its domain errors through the
same table (``api/errors.py``), anything else logged and answered 500/503
(``observability.log_failure``, ``errors.failure_response``), the security headers
(``headers.secured``), then the metrics and the log line (``observability.end_request``).
The answer's headers are built once and sent straight to the server: for a query, the
layers it skips (FastAPI's and Starlette's entry points, two ``send`` wrappers, a
response object's ``__call__``, Starlette's exception middleware, exit stacks and the
router) cost more than its database read (docs/PERFORMANCE.md). With CORS configured the
application has no direct routes: every request then crosses the CORS layer.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from ctplhub.api.errors import domain_error_response, failure_response
from ctplhub.api.headers import secured
from ctplhub.api.observability import begin_request, end_request, log_failure
from ctplhub.domain.errors import DomainError

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class RequestRoute(APIRoute):
    def get_route_handler(self) -> Endpoint:
        endpoint = self.endpoint
        parameters = list(inspect.signature(endpoint, eval_str=True).parameters.values())
        if (
            not inspect.iscoroutinefunction(endpoint)
            or len(parameters) != 1
            or parameters[0].annotation is not Request
            or self.dependant.dependencies
        ):
            raise TypeError(
                f"{self.path}: a RequestRoute endpoint is `async def f(request: Request)` "
                "with no dependencies"
            )
        return endpoint


class DirectRoutes:
    """The fixed-path ``RequestRoute`` routes among ``routes``, answered by :meth:`answer`
    (``api/app.py`` calls it before anything else of the application)."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._routes = {
            (method, route.path): route
            for route in routes
            if isinstance(route, RequestRoute) and not route.param_convertors
            for method in route.methods or ()
        }

    def route_for(self, scope: Scope) -> RequestRoute | None:
        """The direct route of an HTTP request, or ``None``: the application answers it."""
        if scope["type"] != "http":
            return None
        return self._routes.get((scope["method"], scope["path"]))

    async def answer(self, route: RequestRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id, id_header = begin_request(scope)
        scope["route"] = route  # the template the request log and metrics name
        status = 500
        responded = False
        try:
            try:
                response = await route.endpoint(Request(scope, receive))
            except DomainError as error:
                response = domain_error_response(error)
            status = response.status_code
            responded = True
            await _send(response, id_header, send)
        except Exception as error:
            log_failure(scope, request_id, error)
            if not responded:
                response = failure_response(error, request_id)
                status = response.status_code
                await _send(response, id_header, send)
            elif status < 500:
                status = 500  # the answer had begun and broke off
        finally:
            end_request(scope, request_id, status, started)


async def _send(response: Response, id_header: tuple[bytes, bytes], send: Send) -> None:
    """The answer with its request id and security headers, in the two messages of ASGI."""
    headers = secured([*response.raw_headers, id_header])
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
    if response.background is not None:
        await response.background()
