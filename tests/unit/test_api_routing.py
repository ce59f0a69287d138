"""RequestRoute calls an endpoint with the request alone, and refuses any other shape at
start-up rather than silently dropping parameters FastAPI would have filled in;
DirectRoutes answers the fixed-path ones ahead of the framework, with the request id,
the error answers and the security headers every other route gets from the middleware."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from ctplhub.api.errors import install_error_handlers
from ctplhub.api.routing import DirectRoutes, RequestRoute
from ctplhub.domain.errors import InvalidPlate


def test_the_endpoint_gets_the_request_and_the_route_stays_documented() -> None:
    router = APIRouter(route_class=RequestRoute)

    @router.post("/echo/{name}", summary="Echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return PlainTextResponse(f"{request.path_params['name']}:{body.decode()}")

    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.post("/echo/x", content=b"hi").text == "x:hi"
        assert client.get("/echo/x").status_code == 405
        assert "/echo/{name}" in client.get("/openapi.json").json()["paths"]


def test_an_endpoint_with_other_parameters_is_refused_at_start_up() -> None:
    router = APIRouter(route_class=RequestRoute)
    with pytest.raises(TypeError, match="RequestRoute"):

        @router.get("/items/{item_id}")
        async def item(item_id: int, request: Request) -> Response:
            return PlainTextResponse(str(item_id))

    with pytest.raises(TypeError, match="RequestRoute"):

        @router.get("/sync")
        def sync(request: Request) -> Response:
            return PlainTextResponse("")


def test_direct_routes_answer_fixed_paths_and_pass_everything_else_on() -> None:
    router = APIRouter(route_class=RequestRoute)
    seen: list[str] = []

    @router.post("/fixed")
    async def fixed(request: Request) -> Response:
        seen.append(request.scope["route"].path)
        body = await request.body()
        if body == b"bad":
            raise InvalidPlate("plate 'bad' is not a plate")
        if body == b"boom":
            raise RuntimeError("nobody foresaw this")
        return PlainTextResponse("direct")

    @router.post("/with/{name}")
    async def with_name(request: Request) -> Response:
        return PlainTextResponse(f"routed {request.path_params['name']}")

    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    direct = DirectRoutes(router.routes)
    passed_on: list[str] = []

    async def front(scope: Scope, receive: Receive, send: Send) -> None:  # as api/app.py
        route = direct.route_for(scope)
        if route is None:
            if scope["type"] == "http":
                passed_on.append(scope["path"])
            await app(scope, receive, send)
            return
        scope["app"] = app
        await direct.answer(route, scope, receive, send)

    with TestClient(front) as client:
        answer = client.post("/fixed", headers={"X-Request-ID": "given-id"})
        assert answer.text == "direct"
        assert answer.headers["x-request-id"] == "given-id"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        error = client.post("/fixed", content=b"bad")
        assert (error.status_code, error.json()["error"]["code"]) == (400, "invalid_plate")
        assert error.headers["x-request-id"] and error.headers["referrer-policy"]
        failure = client.post("/fixed", content=b"boom")
        assert (failure.status_code, failure.json()["error"]["code"]) == (500, "internal_error")
        assert failure.headers["x-request-id"] in failure.json()["error"]["message"]
        assert failure.headers["x-content-type-options"] == "nosniff"
        assert client.post("/with/x").text == "routed x"
        assert client.get("/fixed").status_code == 405  # no GET route: the router says so
    assert seen == ["/fixed", "/fixed", "/fixed"]
    assert passed_on == ["/with/x", "/fixed"]
