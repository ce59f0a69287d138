"""Disputes (DESIGN §10; ``services/disputes.py``; docs/DECISIONS.md, "Disputes").

- ``POST /v1/disputes`` (owner): a verified query body plus ``kind`` and ``message`` →
  ``201``; throttled and answered like the verified query (``guarded_lookup``).
- ``POST /v1/disputes/{id}/status`` (owner) ``{"token"}``: the token stays out of URLs.
- ``GET /v1/insurers/{code}/disputes?status=open`` (insurer, signed): its queue, the
  answer signed by the rule of §3.1.
- ``POST /v1/disputes/{id}/resolve`` (insurer, signed) ``{"outcome", "note"}``.
- ``GET /v1/disputes?status=escalated`` (regulator, bearer): across insurers, signed too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import (
    bearer,
    client_address,
    insurer_of,
    request_id,
    services,
)
from ctplhub.api.responses import JSONBody
from ctplhub.api.routers.coverage import coverage_query
from ctplhub.api.schemas import (
    DisputeBody,
    DisputeFiledAnswer,
    DisputeResolveBody,
    DisputeStatusAnswer,
    DisputeTokenBody,
    ErrorAnswer,
    InsurerDisputesAnswer,
    RegulatorDisputesAnswer,
)
from ctplhub.domain.errors import NotFound, ValidationFailed
from ctplhub.domain.instants import format_instant
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.disputes import (
    FILE_PURPOSE,
    OVERSIGHT_PURPOSE,
    QUEUE_PURPOSE,
    STATUS_PURPOSE,
    DisputeRequest,
    Disputes,
    DisputeStatus,
    DisputeSummary,
)
from ctplhub.services.ports import Reader

JSON = "application/json"
_EXTRA = ("kind", "message")
REGULATOR_ROLES = ("regulator",)


def dispute_id_of(raw: str) -> int:
    """A path id that is not a number is simply not found (the same 404 as a wrong one)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound("no dispute with this id")
    return int(raw)


def status_answer(found: DisputeStatus) -> dict[str, Any]:
    return {
        "dispute_id": found.dispute_id,
        "status": found.status,
        "history": [
            {"at": format_instant(h.at), "status": h.status, "note": h.note} for h in found.history
        ],
    }


def list_item(d: DisputeSummary, *, with_insurer: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "dispute_id": d.dispute_id,
        "kind": d.kind,
        "plate": d.plate,
        "message": d.message,
        "opened_at": format_instant(d.opened_at),
        "due_at": format_instant(d.due_at),
        "status": d.status,
    }
    if with_insurer:
        item["insurer_code"] = d.insurer_code
    return item


def _required(body: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in body]
    if missing:
        raise ValidationFailed(
            "the request is not valid",
            details=[{"field": n, "problem": "Field required"} for n in missing],
        )


def _only(body: dict[str, Any], *names: str) -> None:
    extra = [n for n in body if n not in names]
    if extra:
        raise ValidationFailed(
            "the request is not valid",
            details=[{"field": n, "problem": "Extra inputs are not permitted"} for n in extra],
        )


# The ``?status=`` both lists take (insurer's queue, regulators' list), for the OpenAPI.
_STATUS_QUERY: dict[str, Any] = {
    "parameters": [
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["open", "resolved", "escalated"]},
        }
    ]
}


def build_router(disputes: Disputes) -> APIRouter:
    router = APIRouter(tags=["disputes"])
    not_found: dict[int | str, dict[str, Any]] = {
        404: {
            "model": ErrorAnswer,
            "description": "no such plate, or the factor does not match (same answer)",
        }
    }

    @router.post(
        "/v1/disputes",
        summary="File a dispute about a verified owner's vehicle data",
        status_code=201,
        response_model=DisputeFiledAnswer,
        responses=not_found,
        openapi_extra=json_body_doc(DisputeBody),
    )
    async def file(request: Request) -> Response:
        app = services(request)
        require_media_type(request, "application/json")
        body = decode_object(await read_limited(request, app.limits.event_bytes))
        question = coverage_query({k: v for k, v in body.items() if k not in _EXTRA})
        _required(body, *_EXTRA)
        if not question.has_factor:
            raise ValidationFailed(
                "a verification factor is required: vin_last6 or owner_id_number",
                details=[{"field": "vin_last6", "problem": "Field required"}],
            )
        wanted = DisputeRequest(question, body["kind"], body["message"])
        reader = Reader("anonymous", "owner", FILE_PURPOSE, request_id(request))
        filed = await guarded_lookup(
            app.throttle,
            client_address(request),
            question.plate,
            lambda: disputes.file(wanted, reader),
            verified=True,
        )
        return JSONBody(
            {
                "dispute_id": filed.dispute_id,
                "status": filed.status,
                "insurer_code": filed.insurer_code,
                "due_at": format_instant(filed.due_at),
                "token": filed.token,
            },
            status_code=201,
        )

    @router.post(
        "/v1/disputes/{dispute_id}/status",
        summary="A dispute's status and history, by the token its owner was given",
        response_model=DisputeStatusAnswer,
        openapi_extra=json_body_doc(DisputeTokenBody),
    )
    async def status(dispute_id: str, request: Request) -> Response:
        app = services(request)
        require_media_type(request, "application/json")
        body = decode_object(await read_limited(request, app.limits.event_bytes))
        _only(body, "token")
        _required(body, "token")
        reader = Reader("anonymous", "owner", STATUS_PURPOSE, request_id(request))
        number = dispute_id_of(dispute_id)
        found = await run_in_threadpool(disputes.status, number, body["token"], reader)
        return JSONBody(status_answer(found))

    @router.get(
        "/v1/insurers/{code}/disputes",
        summary="The insurer's disputes (open by default), oldest first, signed",
        response_model=InsurerDisputesAnswer,
        openapi_extra=_STATUS_QUERY,
    )
    async def insurer_queue(code: str, request: Request) -> Response:
        app = services(request)
        caller = await insurer_of(request)
        reader = Reader(caller, "insurer", QUEUE_PURPOSE, request_id(request))
        found = await run_in_threadpool(
            lambda: disputes.insurer_queue(
                code, caller=caller, status=request.query_params.get("status"), reader=reader
            )
        )
        answer = {"disputes": [list_item(d) for d in found]}
        signed = await app.signer.signed_canonical_json_off_loop(answer)
        return Response(signed, media_type=JSON)

    @router.post(
        "/v1/disputes/{dispute_id}/resolve",
        summary="The insurer answers one of its disputes: corrected or rejected, with a note",
        response_model=DisputeStatusAnswer,
        openapi_extra=json_body_doc(DisputeResolveBody),
    )
    async def resolve(dispute_id: str, request: Request) -> Response:
        app = services(request)
        require_media_type(request, "application/json")
        raw = await read_limited(request, app.limits.event_bytes)
        caller = await insurer_of(request, raw)
        body = decode_object(raw)
        _only(body, "outcome", "note")
        _required(body, "outcome", "note")
        number = dispute_id_of(dispute_id)
        found = await run_in_threadpool(
            lambda: disputes.resolve(
                number, caller=caller, outcome=body["outcome"], note=body["note"]
            )
        )
        return JSONBody(status_answer(found))

    @router.get(
        "/v1/disputes",
        summary="Disputes across insurers for regulators (escalated by default), signed",
        response_model=RegulatorDisputesAnswer,
        openapi_extra=_STATUS_QUERY,
    )
    async def regulator_list(request: Request) -> Response:
        app = services(request)
        caller = await run_in_threadpool(bearer, request, *REGULATOR_ROLES)
        reader = Reader(caller.name, caller.role, OVERSIGHT_PURPOSE, request_id(request))
        found = await run_in_threadpool(
            disputes.regulator_list, request.query_params.get("status"), reader
        )
        answer = {"disputes": [list_item(d, with_insurer=True) for d in found]}
        signed = await app.signer.signed_canonical_json_off_loop(answer)
        return Response(signed, media_type=JSON)

    return router
