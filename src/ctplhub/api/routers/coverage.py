"""Coverage answers: owners' query (verified or not) and police/regulator bulk verify."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.background import BackgroundTask
from starlette.responses import Response

from ctplhub.api import presenters
from ctplhub.api.bodies import (
    decode_object,
    json_body_doc,
    read_fresh,
    read_limited,
    require_media_type,
)
from ctplhub.api.collector import collector_paused
from ctplhub.api.deps import bearer, client_address, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routing import RequestRoute
from ctplhub.api.schemas import (
    DEFAULT_VERIFY_PURPOSE,
    PURPOSE_PATTERN,
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
    body = decode_object(await read_fresh(request, app.limits.event_bytes))
    question = coverage_query(body)
    answer = await guarded_lookup(
        app.throttle,
        client_address(request),
        question.plate,
        lambda: app.coverage.query(question, owner_reader(request)),
        verified=question.has_factor,
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


# A CSV body has no room for the purpose; a header keeps it out of the URL (and the
# request log's path) all the same (docs/DECISIONS.md, "Access log").
PURPOSE_HEADER = "X-CTPL-Purpose"
_PURPOSE = re.compile(PURPOSE_PATTERN)


@router.post(
    "/v1/coverage/verify",
    summary="Bulk verification for police and regulators (JSON or CSV, up to 10,000 items)",
    response_model=VerifyAnswer,
    openapi_extra={
        "parameters": [
            {
                "name": PURPOSE_HEADER,
                "in": "header",
                "required": False,
                "description": (
                    "A CSV upload's reason code (the JSON body's purpose), kept in the "
                    f"access log; {DEFAULT_VERIFY_PURPOSE} when absent. Not with a JSON body."
                ),
                "schema": {"type": "string", "pattern": PURPOSE_PATTERN},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": VerifyBody.model_json_schema()},
                "text/csv": {"schema": {"type": "string", "description": "header: plate,vin,at"}},
            },
        },
    },
)
async def verify(request: Request) -> Response:
    app = services(request)
    caller = await run_in_threadpool(bearer, request, *VERIFY_ROLES)
    kind = require_media_type(request, "application/json", "text/csv")
    header = request.headers.get(PURPOSE_HEADER)
    if kind == "text/csv":
        purpose = DEFAULT_VERIFY_PURPOSE if header is None else purpose_code(header, PURPOSE_HEADER)
        items = _csv_items(await read_limited(request, _VERIFY_BYTES))
    elif header is not None:  # one place per media type: never two purposes to choose from
        raise ValidationFailed(
            "with a JSON body, give purpose in the body",
            details=[{"field": PURPOSE_HEADER, "problem": "only for a CSV upload"}],
        )
    else:
        items, purpose = _json_items(await read_limited(request, _VERIFY_BYTES))
    if len(items) > app.limits.verify_items:
        raise PayloadTooLarge(f"at most {app.limits.verify_items:,} items per call")
    # Each vehicle read is access-logged under the token's account, with the call's purpose
    # (DESIGN §3, §5.3).
    reader = Reader(caller.name, caller.role, purpose, request_id(request))
    if "text/csv" in request.headers.get("accept", ""):
        with collector_paused():  # api/collector.py: the call's objects die with it
            results = await app.verify.verify(items, reader=reader)
        return Response(
            presenters.verify_csv(results),
            media_type="text/csv; charset=utf-8",
            background=BackgroundTask(app.flush_access_log),
        )
    # Each result presented as it is answered, while the next vehicles are read.
    with collector_paused():
        bodies = await app.verify.verify_as(items, reader=reader, present=presenters.verify_result)
    # One signature over the whole answer (§3.1 rule), so a report can quote it; the CSV
    # answer above stays a plain table (docs/DECISIONS.md, "Signed bulk answers").
    answer = presenters.verify_answer(bodies)
    if presenters.verify_answer_is_plain(bodies):
        signed = await app.signer.signed_json_off_loop(answer)
    else:
        signed = await app.signer.signed_canonical_json_off_loop(answer)
    # The vehicles read are queued in the access log; it writes them once this is sent.
    return Response(signed, media_type=JSON, background=BackgroundTask(app.flush_access_log))


def purpose_code(value: object, field: str = "purpose") -> str:
    """``value`` if it is a reason code of DESIGN §3 (``accident``, ``hotline``, ...),
    else ``400 validation_failed`` naming ``field``; the value is never echoed."""
    if isinstance(value, str) and _PURPOSE.fullmatch(value):
        return value
    raise ValidationFailed(
        f"{field} must be a snake_case reason code such as roadside_check",
        details=[{"field": field, "problem": "2-40 of a-z, 0-9 and _, starting with a letter"}],
    )


def _json_items(raw: bytes) -> tuple[list[Any], str]:
    body = decode_object(raw)
    items = body.get("items")
    if not isinstance(items, list):
        raise ValidationFailed('the body must be {"items": [...]}')
    return items, purpose_code(body.get("purpose", DEFAULT_VERIFY_PURPOSE))


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
