"""Insurer endpoints: report events, one or a batch; heartbeat; sync health (DESIGN §3)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ctplhub.api import presenters
from ctplhub.api.bodies import (
    decode_object,
    read_limited,
    require_media_type,
    spool_body,
)
from ctplhub.api.deps import AppServices, insurer_of, services, signed_insurer
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import (
    BatchAnswer,
    EventReceipt,
    HeartbeatBody,
    SyncStatusBody,
    event_body_doc,
)
from ctplhub.domain.errors import PayloadTooLarge
from ctplhub.services.event_lines import CSV, NDJSON, count_lines, read_lines
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.services.report_events import LineStatus, RawLine

# A batch that adds this many events refreshes the planner statistics it made stale.
_LARGE_BATCH = 10_000

router = APIRouter(tags=["insurers"])


@router.post(
    "/v1/policy-events",
    status_code=201,
    summary="Report one policy event",
    response_model=EventReceipt,
    responses={200: {"model": EventReceipt, "description": "identical repeat (idempotent)"}},
    openapi_extra=event_body_doc(),
)
async def report_event(request: Request) -> Response:
    app = services(request)
    require_media_type(request, "application/json")
    body = await read_limited(request, app.limits.event_bytes)
    insurer = await insurer_of(request, body)
    event = decode_object(body)
    created, receipt = await run_in_threadpool(
        app.report_events.report, event, insurer_code=insurer
    )
    return JSONBody(presenters.receipt(receipt), status_code=201 if created else 200)


@router.post(
    "/v1/policy-events/batch",
    summary="Report up to 100,000 events as NDJSON or CSV",
    response_model=BatchAnswer,
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
async def report_batch(request: Request) -> Response:
    app = services(request)
    kind = require_media_type(request, NDJSON, CSV)
    spool, digest = await spool_body(request, app.limits.batch_bytes)
    try:
        insurer = await run_in_threadpool(signed_insurer, request, digest)
        # Count first: an over-long batch is refused whole, before any line is stored.
        count = await run_in_threadpool(count_lines, spool, kind)
        if count > app.limits.batch_lines:
            raise PayloadTooLarge(
                f"a batch holds at most {app.limits.batch_lines:,} events; this one has {count:,}"
            )
        results = await run_in_threadpool(_run_batch, app, read_lines(spool, kind), insurer)
    finally:
        spool.close()
    return StreamingResponse(stream_batch_answer(*results), media_type="application/json")


def _run_batch(
    app: AppServices, lines: Iterator[RawLine], insurer: str
) -> tuple[dict[str, Any], IO[bytes]]:
    """Store the batch; results go to a temporary file so memory stays flat. The answer's
    ``tree_head`` is the one the last transaction signed: it holds every leaf before it."""
    counts = dict.fromkeys((s.value for s in LineStatus), 0)
    head: SignedTreeHead | None = None
    out = tempfile.SpooledTemporaryFile(max_size=4 << 20)  # noqa: SIM115 - streamed, then closed
    try:
        first = True
        for result in app.report_events.report_many(lines, insurer_code=insurer):
            counts[result.status.value] += 1
            if result.leaf is not None:
                head = result.leaf.tree_head
            out.write(b"" if first else b",")
            out.write(orjson.dumps(presenters.line_result(result)))
            first = False
    except BaseException:
        out.close()
        raise
    if counts[LineStatus.ACCEPTED.value] >= _LARGE_BATCH:
        app.report_events.refresh_statistics(counts[LineStatus.ACCEPTED.value])
    out.seek(0)
    if head is None:  # nothing accepted, nothing appended
        return dict(counts), out
    return {**counts, "tree_head": presenters.signed_tree_head(head)}, out


def stream_batch_answer(counts: dict[str, Any], results: IO[bytes]) -> Iterator[bytes]:
    try:
        yield orjson.dumps(counts)[:-1] + b',"results":['
        while chunk := results.read(1 << 16):
            yield chunk
        yield b"]}"
    finally:
        results.close()


@router.post(
    "/v1/insurers/{code}/heartbeat",
    summary="Nothing new up to this instant: move the sync watermark",
    response_model=SyncStatusBody,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": HeartbeatBody.model_json_schema()}},
        }
    },
)
async def heartbeat(code: str, request: Request) -> Response:
    app = services(request)
    body = await read_limited(request, app.limits.event_bytes)
    if body.strip():
        require_media_type(request, "application/json")
    insurer = await insurer_of(request, body)
    data = decode_object(body) if body.strip() else {}
    answer = await run_in_threadpool(
        app.insurers.heartbeat, code.upper(), caller=insurer, at=data.get("at")
    )
    return JSONBody(presenters.sync_status(answer))


# GET /v1/insurers/{code}/sync (sync health) is in api/routers/insurer_health.py.
