"""``RequestRoute``: a route whose endpoint takes the request and returns a response.

Our API endpoints read, check and decode their bodies themselves (size limits before
parsing, one error shape, signatures over the raw bytes), so FastAPI's per-request
dependency solving, body handling and response validation do nothing for them but cost
CPU on the hottest path: about a tenth of a verified query's server time. A route of
this class calls the endpoint with the ``Request`` and sends what it returns; routing,
the exception handlers, middleware and the OpenAPI document are FastAPI's as before.
Path parameters are in ``request.path_params``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

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
