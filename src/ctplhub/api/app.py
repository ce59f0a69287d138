"""The FastAPI application factory: routers, error mapping, metrics. No wiring here:
``bootstrap`` builds the services and hands them in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from ctplhub import __version__
from ctplhub.api.deps import AppServices
from ctplhub.api.docs_page import docs_router
from ctplhub.api.errors import install_error_handlers
from ctplhub.api.headers import harden
from ctplhub.api.observability import RequestObservability
from ctplhub.api.openapi import complete_document
from ctplhub.api.routers import access_log, agent, certificates, coverage, events, ledger, ops
from ctplhub.api.routing import DirectRoutes
from ctplhub.logs import flush_logs, flush_periodically

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


class _App(FastAPI):
    """FastAPI with the platform's request observability outermost, around Starlette's
    error guard, so that a failure of any route reaches Starlette's guard first, which
    answers it through the handler ``install_error_handlers`` gives it, then reaches
    ``RequestObservability``, which logs it. Around both, a third thin layer adds the
    security headers (and CORS when origins are configured: ``api/headers.py``).

    The hottest routes (the coverage query and bulk verify) are answered before all of
    that by ``DirectRoutes``, which does the same for them in one layer
    (``api/routing.py``, docs/PERFORMANCE.md)."""

    direct: DirectRoutes
    cors_origins: tuple[str, ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.direct.route_for(scope)
        if route is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette sets it: ``request.app`` finds the services
        await self.direct.answer(route, scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        # Security headers and CORS (api/headers.py) outermost: a 500 carries them too.
        return harden(RequestObservability(inner), self.cors_origins)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, completed once by ``api/openapi.py``: every ``$ref``
        resolvable, every status an operation can answer documented, no 422."""
        if self.openapi_schema is None:
            self.openapi_schema = complete_document(super().openapi())
        return self.openapi_schema


def create_app(
    services: AppServices,
    *,
    extra_routers: tuple[APIRouter, ...] = (),
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.open_resources()  # e.g. the async database pool of answers
        flusher = asyncio.create_task(flush_periodically())  # log lines of an idle server
        try:
            yield
        finally:
            flusher.cancel()
            flush_logs()
            await services.close_resources()

    app = _App(
        title="CTPL Hub",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks check the global providers on every request; the
        # platform's metrics and logs are its own (``RequestObservability``).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Swagger UI and ReDoc load their script from a CDN, and no page may load anything
        # from another origin (DESIGN §3): /docs is rendered here (api/docs_page.py).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.cors_origins = cors_origins
    app.state.services = services
    install_error_handlers(app)
    routers = (
        coverage.router,
        access_log.router,
        agent.router,
        events.router,
        ops.router,
        ledger.router,
        certificates.router,
        *extra_routers,
        docs_router(app.openapi),
    )
    # With CORS, a browser's answer needs the CORS layer's headers: no direct routes.
    app.direct = DirectRoutes([] if cors_origins else list(coverage.router.routes))
    # The routers' routes go straight onto the application's router, ahead of the docs'
    # and with the hottest first: an included router is matched through its own layer of
    # route contexts, which cost ~15 µs a request with four routers (docs/PERFORMANCE.md),
    # as much as a database lookup.
    app.router.routes[0:0] = [route for router in routers for route in router.routes]
    return app
