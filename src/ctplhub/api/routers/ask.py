"""The natural-language assistant: ``POST /v1/ask`` (DESIGN §3).

``{"question", "vin_last6"?}`` → ``{"intent", "plate", "language", "answer",
"needs_verification", "coverage"}``. A question about a vehicle that names its plate and
brings ``vin_last6`` is one verified coverage query: the same look-up, budgets (§5.3,
``guarded_lookup``), access-log entry and signed answer as ``/v1/coverage/query``, and
``coverage`` is that signed full answer, byte for byte. Every other question is answered
from the rules alone, with no database work and nothing to throttle (docs/DECISIONS.md,
"Assistant").
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ctplhub.api import presenters
from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import client_address, request_id, services
from ctplhub.api.routing import RequestRoute
from ctplhub.api.schemas import AskAnswer, AskBody, ErrorAnswer
from ctplhub.domain.errors import ValidationFailed
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.assistant import Assistant, Reply
from ctplhub.services.check_coverage import FullAnswer
from ctplhub.services.ports import Reader

ASK_BYTES = 8 << 10
"""A body over this is ``413 payload_too_large``: room for a question of the longest
allowed length even with every character escaped."""

PURPOSE = "assistant_query"
"""The access log's purpose for a verified question: an owner's read, through the assistant."""

_FIELDS = tuple(AskBody.model_fields)


def build_router(assistant: Assistant) -> APIRouter:
    router = APIRouter(tags=["assistant"], route_class=RequestRoute)

    @router.post(
        "/v1/ask",
        summary="Ask in words (Chinese or English): status, expiry, insurer, how to renew …",
        response_model=AskAnswer,
        responses={
            404: {
                "model": ErrorAnswer,
                "description": "no such plate, or the factor does not match (same answer)",
            }
        },
        openapi_extra=json_body_doc(AskBody),
    )
    async def ask(request: Request) -> Response:
        app = services(request)
        require_media_type(request, "application/json")
        body = decode_object(await read_limited(request, ASK_BYTES))
        _check_fields(body)
        plan = assistant.plan(body.get("question"), body.get("vin_last6"))
        if plan.lookup is None:
            assert plan.reply is not None
            return Response(_answer_json(plan.reply), media_type="application/json")
        lookup = plan.lookup
        reader = Reader("anonymous", "owner", PURPOSE, request_id(request))
        found = await guarded_lookup(
            app.throttle,
            client_address(request),
            lookup.plate,
            lambda: app.coverage.query(lookup, reader),
            verified=True,
        )
        assert isinstance(found, FullAnswer)  # a factor was given: full answer or 404
        reply = assistant.answer(plan, found)
        signed = await app.signer.signed_json_off_loop(presenters.full_answer(found))
        return Response(_answer_json(reply, signed), media_type="application/json")

    return router


def _check_fields(body: dict[str, Any]) -> None:
    """Unknown fields are refused, as ``AskBody`` would (its model forbids extras)."""
    problems = [
        {"field": name, "problem": "Extra inputs are not permitted"}
        for name in body
        if name not in _FIELDS
    ]
    if "question" not in body:
        problems.append({"field": "question", "problem": "Field required"})
    if problems:
        raise ValidationFailed("the request is not valid", details=problems)


def _answer_json(reply: Reply, signed_coverage: bytes | None = None) -> bytes:
    """The answer of §3; ``coverage`` is the signed full answer's own bytes, embedded
    as they were signed (never re-serialised)."""
    return orjson.dumps(
        {
            "intent": reply.intent.value,
            "plate": reply.plate.display if reply.plate else None,
            "language": reply.language,
            "answer": reply.answer,
            "needs_verification": reply.needs_verification,
            "coverage": None if signed_coverage is None else orjson.Fragment(signed_coverage),
        }
    )
