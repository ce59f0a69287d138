"""Who read my vehicle's data? ``POST /v1/coverage/access-log`` (DESIGN §3, §5.3).

The body is a verified query's (plate plus ``vin_last6`` or ``owner_id_number``); a
factor is required. It is throttled exactly like a verified query (``guarded_lookup``),
since a wrong factor here is one more guess at a VIN tail: the same 404, the same budgets.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import client_address, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routers.coverage import coverage_query
from ctplhub.api.routing import RequestRoute
from ctplhub.api.schemas import AccessLogAnswer, CoverageQueryBody, ErrorAnswer
from ctplhub.domain.instants import format_instant
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.access_log import VIEW
from ctplhub.services.ports import AccessEntry, Reader

router = APIRouter(tags=["coverage"], route_class=RequestRoute)


@router.post(
    "/v1/coverage/access-log",
    summary="Who read this vehicle's data: for its verified owner, newest first",
    response_model=AccessLogAnswer,
    responses={
        404: {
            "model": ErrorAnswer,
            "description": "no such plate, or the factor does not match (same answer)",
        },
    },
    openapi_extra=json_body_doc(CoverageQueryBody),
)
async def access_log(request: Request) -> Response:
    app = services(request)
    require_media_type(request, "application/json")
    body = decode_object(await read_limited(request, app.limits.event_bytes))
    question = coverage_query(body)
    reader = Reader(VIEW.actor, VIEW.role, VIEW.purpose, request_id(request))
    entries = await guarded_lookup(
        app.throttle,
        client_address(request),
        question.plate,
        lambda: app.access_log.entries(question, reader),
        verified=question.has_factor,
    )
    return JSONBody({"entries": [_entry(entry) for entry in entries]})


def _entry(entry: AccessEntry) -> dict[str, str]:
    return {
        "at": format_instant(entry.at),
        "actor_role": entry.actor_role,
        "purpose": entry.purpose,
    }
