"""Operations: liveness, readiness, metrics and the public signing keys."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from ctplhub.api.deps import services
from ctplhub.api.errors import error_response
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import ErrorAnswer, HealthBody, JwksBody, ReadyBody
from ctplhub.services.readiness import Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers", response_model=HealthBody)
async def healthz() -> Response:
    return JSONBody({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the database answers; each part's state",
    response_model=ReadyBody,
    responses={503: {"model": ErrorAnswer, "description": "the database does not answer"}},
)
async def readyz(request: Request) -> Response:
    state = await run_in_threadpool(services(request).readiness)
    if state.ready:
        return JSONBody({"status": "ready", "parts": present_parts(state)})
    return error_response(503, "not_ready", "the database does not answer")


def present_parts(state: Readiness) -> dict[str, dict[str, object]]:
    """Each part's state; a lag only where it was measured."""
    parts: dict[str, dict[str, object]] = {}
    for name, part in state.parts.items():
        body: dict[str, object] = {"status": "up" if part.up else "down"}
        for field in ("lag_leaves", "lag_bytes", "lag_s"):
            value = getattr(part, field)
            if value is not None:
                body[field] = value
        parts[name] = body
    return parts


@router.get("/metrics", summary="Prometheus metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/.well-known/ctplhub-keys.json",
    summary="JWKS of the Ed25519 keys that sign answers (RFC 8037)",
    response_model=JwksBody,
)
async def keys(request: Request) -> Response:
    return JSONBody(
        services(request).signer.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
