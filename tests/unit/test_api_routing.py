"""RequestRoute calls an endpoint with the request alone, and refuses any other shape at
start-up rather than silently dropping parameters FastAPI would have filled in."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient

from ctplhub.api.routing import RequestRoute


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
