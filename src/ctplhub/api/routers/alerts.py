"""``POST /v1/alerts`` (DESIGN §12): the roadside cameras' alerts of a region, for police
and regulators (bearer token), oldest first by ``seen_at``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import bearer
from ctplhub.api.responses import JSONBody
from ctplhub.api.routing import RequestRoute
from ctplhub.domain.errors import ValidationFailed
from ctplhub.services.anpr import AnprAlerts

ALERT_ROLES = ("police", "regulator")
_BODY_BYTES = 4_096


class AlertsBody(BaseModel):
    """Which alerts: regions whose code starts with ``region_prefix`` ("" for every
    region), seen at or after ``since`` (default: 30 days ago)."""

    model_config = ConfigDict(extra="forbid")

    region_prefix: str = Field(pattern=r"^[0-9]{0,6}$", examples=["3205"])
    since: str | None = Field(default=None, examples=["2026-12-01T00:00:00+08:00"])


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertBody(_Answer):
    alert_id: str
    read_id: str
    camera_id: str
    region_code: str
    plate: str
    seen_at: str
    status: str
    lapsed_since: str | None


class AlertsAnswer(_Answer):
    """Oldest first by ``seen_at``; at most 10,000 (ask again from the last ``seen_at``)."""

    alerts: list[AlertBody]


def build_router(alerts: AnprAlerts) -> APIRouter:
    router = APIRouter(tags=["alerts"], route_class=RequestRoute)

    @router.post(
        "/v1/alerts",
        summary="Alerts of uncovered vehicles seen by roadside cameras, oldest first",
        response_model=AlertsAnswer,
        openapi_extra=json_body_doc(AlertsBody),
    )
    async def list_alerts(request: Request) -> Response:
        await run_in_threadpool(bearer, request, *ALERT_ROLES)
        require_media_type(request, "application/json")
        body = decode_object(await read_limited(request, _BODY_BYTES))
        extra = sorted(set(body) - {"region_prefix", "since"})
        if extra:
            raise ValidationFailed(
                "the request is not valid",
                details=[
                    {"field": name, "problem": "Extra inputs are not permitted"} for name in extra
                ],
            )
        if "region_prefix" not in body:
            raise ValidationFailed(
                "the request is not valid",
                details=[{"field": "region_prefix", "problem": "Field required"}],
            )
        found = await run_in_threadpool(alerts.listed, body["region_prefix"], body.get("since"))
        return JSONBody({"alerts": [alert.fields() for alert in found]})

    return router
