"""Coverage answers: owners' query (verified or not) and police/regulator bulk verify."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api import presenters
from ctplhub.api.bodies import (
    decode_object,
    json_body_doc,
    read_limited,
    require_media_type,
)
from ctplhub.api.deps import bearer, client_address, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routing import RequestRoute
from ctplhub.api.schemas import (
    CoverageQueryBody,
    ErrorAnswer,
    FullAnswerBody,
    ShortAnswerBody,
    VerifyAnswer,
    VerifyBody,
)
from ctplhub.domain.errors import MalformedInput, PayloadTooLarge, ValidationFailed
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.check_coverage import CoverageQuery, FullAnswer
from ctplhub.services.ports import Reader

router = APIRouter(tags=["coverage"], route_class=RequestRoute)

JSON = "application/json"

VERIFY_ROLES = ("police", "regulator")
_VERIFY_BYTES = 8 << 20


@router.post(
    "/v1/coverage/query",
    summary="Is this vehicle covered? Full signed answer with a verification factor",
    response_model=FullAnswerBody | ShortAnswerBody,
    responses={
        404: {
            "model": ErrorAnswer,
            "description": "no such plate, or the factor does not match (same answer)",
        }
    },
    openapi_extra=json_body_doc(CoverageQueryBody),
)
async def query(request: Request) -> Response:
    app = services(request)
    require_media_type(request, "application/json")
    body = decode_object(await read_limited(request, app.limits.event_bytes))
    question = coverage_query(body)
    answer = await guarded_lookup(
        app.throttle,
        client_address(request),
        question.plate,
        lambda: app.coverage.query(question, owner_reader(request)),
        verified=question.vin_last6 is not None or question.owner_id_number is not None,
    )
    if isinstance(answer, FullAnswer):
        signed = await app.signer.signed_json_off_loop(presenters.full_answer(answer))
        return Response(signed, media_type=JSON)
    return JSONBody(presenters.short_answer(answer))


def owner_reader(request: Request) -> Reader:
    """The owner's read as the access log records it, under the request's id, so that an
    entry leads to the request's log line."""
    return Reader("anonymous", "owner", "coverage_query", request_id(request))


_QUERY_FIELDS = tuple(CoverageQueryBody.model_fields)


def coverage_query(body: dict[str, Any]) -> CoverageQuery:
    """The query body of §3, checked as ``CoverageQueryBody`` would (a test holds the two
    equal): by hand, because on this path the model cost more than the lookup."""
    problems = [
        {"field": name, "problem": "Extra inputs are not permitted"}
        for name in body
        if name not in _QUERY_FIELDS
    ]
    if "plate" not in body:
        problems.append({"field": "plate", "problem": "Field required"})
    for name in _QUERY_FIELDS:
        value = body.get(name)
        wrong = not (isinstance(value, str) or (value is None and name != "plate"))
        if wrong and name in body:
            problems.append({"field": name, "problem": "Input should be a valid string"})
    if problems:
        raise ValidationFailed("the request is not valid", details=problems)
    return CoverageQuery(
        body["plate"], body.get("vin_last6"), body.get("owner_id_number"), body.get("at")
    )


@router.post(
    "/v1/coverage/verify",
    summary="Bulk verification for police and regulators (JSON or CSV, up to 10,000 items)",
    response_model=VerifyAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": VerifyBody.model_json_schema()},
                "text/csv": {"schema": {"type": "string", "description": "header: plate,vin,at"}},
            },
        }
    },
)
async def verify(request: Request) -> Response:
    app = services(request)
    caller = await run_in_threadpool(bearer, request, *VERIFY_ROLES)
    # Each vehicle read is access-logged under the token's account (DESIGN §5.3).
    reader = Reader(caller.name, caller.role, "bulk_verify", request_id(request))
    kind = require_media_type(request, "application/json", "text/csv")
    raw = await read_limited(request, _VERIFY_BYTES)
    items = _csv_items(raw) if kind == "text/csv" else _json_items(raw)
    if len(items) > app.limits.verify_items:
        raise PayloadTooLarge(f"at most {app.limits.verify_items:,} items per call")
    results = await app.verify.verify(items, reader=reader)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(presenters.verify_csv(results), media_type="text/csv; charset=utf-8")
    return JSONBody(presenters.verify_answer(results))


def _json_items(raw: bytes) -> list[Any]:
    items = decode_object(raw).get("items")
    if not isinstance(items, list):
        raise ValidationFailed('the body must be {"items": [...]}')
    return items


def _csv_items(raw: bytes) -> list[Any]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedInput("the CSV is not valid UTF-8", code="malformed_csv") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or not {"plate", "vin"} & set(reader.fieldnames):
            raise ValidationFailed("the CSV header must name plate and/or vin (and optionally at)")
        return [
            {k: v for k, v in row.items() if k in ("plate", "vin", "at") and v} for row in reader
        ]
    except csv.Error as error:
        raise MalformedInput(f"the CSV cannot be read: {error}", code="malformed_csv") from None
