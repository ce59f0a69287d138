"""A service agent answers a hotline caller: ``POST /v1/agent/coverage-query``.

DESIGN §1 gives agents a named account (role ``agent``) that queries on a caller's behalf
with a reason code, every query audited; §3 names no endpoint, so this one is ours
(docs/DECISIONS.md, "Access log"). The body is a verified query's plus ``purpose``, the
reason code §3 asks of every named account that reads personal data: the agent asks the
caller for the VIN tail or ID number as the owner's page would, so an agent account is
no way around the verification factor. The answer is the owner's full signed answer; the
access log records the agent's name, role ``agent`` and the purpose.
Wrong factors spend the same per-plate budget as owners' (and the agent's own in place
of a client address's).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api import presenters
from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import bearer, request_id, services
from ctplhub.api.routers.coverage import coverage_query, purpose_code
from ctplhub.api.routing import RequestRoute
from ctplhub.api.schemas import AgentQueryBody, ErrorAnswer, FullAnswerBody
from ctplhub.domain.errors import ValidationFailed
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.check_coverage import FullAnswer
from ctplhub.services.ports import Reader

router = APIRouter(tags=["coverage"], route_class=RequestRoute)

AGENT_ROLES = ("agent",)


@router.post(
    "/v1/agent/coverage-query",
    summary="A service agent's verified query on a caller's behalf, with its purpose",
    response_model=FullAnswerBody,
    responses={
        404: {
            "model": ErrorAnswer,
            "description": "no such plate, or the factor does not match (same answer)",
        },
    },
    openapi_extra=json_body_doc(AgentQueryBody),
)
async def agent_query(request: Request) -> Response:
    app = services(request)
    caller = await run_in_threadpool(bearer, request, *AGENT_ROLES)
    require_media_type(request, "application/json")
    body = decode_object(await read_limited(request, app.limits.event_bytes))
    purpose = purpose_code(body.pop("purpose", None))
    question = coverage_query(body)
    if question.vin_last6 is None and question.owner_id_number is None:
        raise ValidationFailed(
            "a verification factor is required: vin_last6 or owner_id_number",
            details=[{"field": "vin_last6", "problem": "Field required"}],
        )
    reader = Reader(caller.name, caller.role, purpose, request_id(request))
    answer = await guarded_lookup(
        app.throttle,
        f"agent:{caller.name}",
        question.plate,
        lambda: app.coverage.query(question, reader),
        verified=True,
    )
    assert isinstance(answer, FullAnswer)  # a factor was given
    signed = await app.signer.signed_json_off_loop(presenters.full_answer(answer))
    return Response(signed, media_type="application/json")
