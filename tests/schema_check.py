"""Every JSON answer the suite sees is checked against the response model that
``/openapi.json`` publishes for its route and status.

The check wraps the test client's transport, so it covers requests sent through the
``TestClient`` and through the signing insurer client alike. A JSON answer on a route or
status with no published model fails the test that caused it, as does a field the model
does not name (response models forbid extras).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.routing import Match

from ctplhub.api.schemas import ErrorAnswer

Checked = list[tuple[str, str, int]]  # (method, route template, status) of checked answers


class SchemaError(AssertionError):
    pass


@cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _route(app: FastAPI, method: str, path: str) -> APIRoute | bool:
    """The API route of a request; ``True`` for FastAPI's own pages (``/openapi.json``
    is the document itself), ``False`` when no route matches."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route if isinstance(route, APIRoute) else True
    return False


def model_for(route: APIRoute | None, status: int) -> Any:
    """The published model of an answer, or ``None`` when none is published."""
    if status >= 400:
        return ErrorAnswer  # every error has the one shape of DESIGN §3
    if route is None:
        return None
    if status == (route.status_code or 200):
        return route.response_model
    documented = route.responses.get(status) or route.responses.get(str(status)) or {}
    return documented.get("model")


def check(app: FastAPI, request: httpx.Request, response: httpx.Response) -> tuple[str, int]:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return ("", 0)
    route = _route(app, request.method, request.url.path)
    if route is True:
        return ("", 0)
    template = route.path if route else request.url.path
    model = model_for(route or None, response.status_code)
    if model is None:
        raise SchemaError(
            f"{request.method} {template} answered {response.status_code} with JSON, "
            "but /openapi.json publishes no model for that status"
        )
    try:
        _adapter(model).validate_json(response.content)
    except Exception as error:
        raise SchemaError(
            f"{request.method} {template} {response.status_code}: the answer does not match "
            f"the published model {getattr(model, '__name__', model)}:\n{error}"
        ) from None
    return (template, response.status_code)


class CheckingTransport(httpx.BaseTransport):
    """Wraps a transport; checks each JSON answer against the published models."""

    def __init__(self, inner: httpx.BaseTransport, app: FastAPI) -> None:
        self.inner = inner
        self.app = app
        self.checked: Checked = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        template, status = check(self.app, request, response)
        if status:
            self.checked.append((request.method, template, status))
        return response

    def close(self) -> None:
        self.inner.close()
