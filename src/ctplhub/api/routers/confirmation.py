"""``PUT /v1/insurers/{code}/confirm-endpoint`` (DESIGN §10): an insurer registers where
the platform asks it to confirm a "not covered" live (``services/live_confirmation.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api.bodies import decode_object, read_limited, require_media_type
from ctplhub.api.deps import insurer_of, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import ConfirmEndpointAnswer, ConfirmEndpointBody
from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.instants import format_instant
from ctplhub.services.live_confirmation import LiveConfirmation, RegisteredEndpoint


def answer(registered: RegisteredEndpoint) -> dict[str, object]:
    return {
        "insurer_code": registered.insurer_code,
        "url": registered.url,
        "updated_at": format_instant(registered.updated_at),
    }


def build_router(confirmation: LiveConfirmation) -> APIRouter:
    router = APIRouter(tags=["insurers"])

    @router.put(
        "/v1/insurers/{code}/confirm-endpoint",
        summary="Register (or, with a null url, remove) this insurer's live-confirmation URL",
        response_model=ConfirmEndpointAnswer,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": ConfirmEndpointBody.model_json_schema()}
                },
            }
        },
    )
    async def put_confirm_endpoint(code: str, request: Request) -> Response:
        app = services(request)
        body = await read_limited(request, app.limits.event_bytes)
        insurer = await insurer_of(request, body)
        require_media_type(request, "application/json")
        data = decode_object(body)
        extra = sorted(set(data) - {"url"})
        if "url" not in data or extra:
            problems = [
                {"field": name, "problem": "Extra inputs are not permitted"} for name in extra
            ]
            if "url" not in data:
                problems.append({"field": "url", "problem": "Field required"})
            raise ValidationFailed('the body must be {"url": "https://..."}', details=problems)
        registered = await run_in_threadpool(
            confirmation.register, code.upper(), data["url"], caller=insurer
        )
        return JSONBody(answer(registered))

    return router
