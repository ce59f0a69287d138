"""RequestRoute calls an endpoint with the request alone, and refuses any other shape at
start-up rather than silently dropping parameters FastAPI would have filled in;
DirectRoutes answers the fixed-path ones ahead of the framework, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient

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
        if await request.body() == b"bad":
            raise InvalidPlate("plate 'bad' is not a plate")
        return PlainTextResponse("direct")

    @router.post("/with/{name}")
    async def with_name(request: Request) -> Response:
        return PlainTextResponse(f"routed {request.path_params['name']}")

    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    passed_on: list[str] = []

    @app.middleware("http")  # added first: it sits below the direct routes
    async def below(request: Request, call_next: Any) -> Response:
        passed_on.append(request.url.path)  # only what the direct routes passed on
        response: Response = await call_next(request)
        return response

    app.add_middleware(DirectRoutes, routes=router.routes)

    with TestClient(app) as client:
        assert client.post("/fixed").text == "direct"
        error = client.post("/fixed", content=b"bad")
        assert (error.status_code, error.json()["error"]["code"]) == (400, "invalid_plate")
        assert client.post("/with/x").text == "routed x"
        assert client.get("/fixed").status_code == 405  # no GET route: the router says so
    assert seen == ["/fixed", "/fixed"]
    assert passed_on == ["/with/x", "/fixed"]
