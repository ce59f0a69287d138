"""The hottest routes, answered with as little framework as possible.

``RequestRoute``: a route whose endpoint takes the request and returns a response. Our
API endpoints read, check and decode their bodies themselves (size limits before
parsing, one error shape, signatures over the raw bytes), so FastAPI's per-request
dependency solving, body handling and response validation do nothing for them but cost
CPU on the hottest path: about a tenth of a verified query's server time. A route of
this class calls the endpoint with the ``Request`` and sends what it returns; the
OpenAPI document is FastAPI's as before. Path parameters are in ``request.path_params``.

``DirectRoutes``: the routes of that class with a fixed path (the coverage query and
bulk verify) are dispatched by a middleware just inside ``RequestObservability``, ahead
of Starlette's exception middleware, FastAPI's exit stacks and the router: for a query,
those layers cost as much as the database read (docs/PERFORMANCE.md). The endpoint is
the same function; its domain errors are answered through the same table
(``api/errors.py``), and anything else reaches ``RequestObservability`` as a 500.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ctplhub.api.errors import domain_error_response
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
    """ASGI middleware: fixed-path ``RequestRoute`` routes answered without the layers
    below it; every other request passes through untouched."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self._routes = {
            (method, route.path): route
            for route in routes
            if isinstance(route, RequestRoute) and not route.param_convertors
            for method in route.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http":
            route = self._routes.get((scope["method"], scope["path"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the template the request log and metrics name
        try:
            response = await route.endpoint(Request(scope, receive))
        except DomainError as error:
            response = domain_error_response(error)
        await response(scope, receive, send)
