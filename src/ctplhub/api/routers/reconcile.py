"""Reconciliation endpoints (DESIGN §10): an insurer compares its book with the
platform's, by digest and then line by line. Both are signed (§5.1) and only for the
insurer's own code (``403 insurer_mismatch`` otherwise)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api import presenters_reconcile as present
from ctplhub.api.bodies import (
    decode_object,
    json_body_doc,
    read_limited,
    require_media_type,
    spool_body,
)
from ctplhub.api.deps import insurer_of, services, signed_insurer
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import ReconcileDiffAnswer, ReconcileDigestAnswer, ReconcileDigestBody
from ctplhub.domain.reconciliation import checked_digest
from ctplhub.services.event_lines import CSV, NDJSON, read_lines
from ctplhub.services.reconcile import Reconcile


def build_router(reconcile: Reconcile, *, max_bytes: int) -> APIRouter:
    router = APIRouter(tags=["insurers"])

    @router.post(
        "/v1/insurers/{code}/reconcile",
        summary="Compare the insurer's book with the platform's by count and digest",
        response_model=ReconcileDigestAnswer,
        openapi_extra=json_body_doc(ReconcileDigestBody),
    )
    async def compare_digest(code: str, request: Request) -> Response:
        app = services(request)
        require_media_type(request, "application/json")
        body = await read_limited(request, app.limits.event_bytes)
        caller = await insurer_of(request, body)
        data = decode_object(body)
        given = checked_digest(data.get("count"), data.get("digest"))
        result = await run_in_threadpool(
            reconcile.compare_digest, code.upper(), caller=caller, given=given
        )
        return JSONBody(present.digest_comparison(result))

    @router.post(
        "/v1/insurers/{code}/reconcile/diff",
        summary="The policies to resend or investigate: the insurer's view, line by line",
        description=(
            'NDJSON body, one `{"policy_no", "version"}` a line (or CSV with the header '
            "`policy_no,version`). A bad line, or a policy given twice, refuses the whole "
            "diff with `400` naming the line: a partial diff would mislead."
        ),
        response_model=ReconcileDiffAnswer,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    NDJSON: {"schema": {"type": "string"}},
                    CSV: {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def diff(code: str, request: Request) -> Response:
        kind = require_media_type(request, NDJSON, CSV)
        spool, digest = await spool_body(request, max_bytes)
        try:
            caller = await run_in_threadpool(signed_insurer, request, digest)
            result = await run_in_threadpool(
                lambda: reconcile.diff(code.upper(), caller=caller, lines=read_lines(spool, kind))
            )
        finally:
            spool.close()
        return JSONBody(present.book_diff(result))

    return router
