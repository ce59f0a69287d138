"""The FastAPI application factory: routers, error mapping, metrics. No wiring here:
``bootstrap`` builds the services and hands them in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from ctplhub import __version__
from ctplhub.api.deps import AppServices
from ctplhub.api.errors import install_error_handlers
from ctplhub.api.observability import RequestObservability
from ctplhub.api.routers import coverage, events, ops

DESCRIPTION = """
CTPL Hub answers one question for owners, police and regulators: *is this vehicle's
compulsory third-party liability insurance (交强险) in force, and until when?*

* Insurers report policy events with HMAC-signed requests (`X-CTPL-*` headers).
* Owners query by plate plus a verification factor and get an Ed25519-signed answer;
  the public keys are at `/.well-known/ctplhub-keys.json`.
* Police and regulators verify coverage in bulk with bearer tokens.

Every error has the shape `{"error": {"code", "message", "details"}}`; every answer
carries an `X-Request-ID` header (yours, when you send one) to quote when reporting a
problem.
"""


def create_app(services: AppServices, *, extra_routers: tuple[APIRouter, ...] = ()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.open_resources()  # e.g. the async database pool of answers
        try:
            yield
        finally:
            await services.close_resources()

    app = FastAPI(title="CTPL Hub", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(RequestObservability)
    for router in (events.router, coverage.router, ops.router, *extra_routers):
        app.include_router(router)
    return app
