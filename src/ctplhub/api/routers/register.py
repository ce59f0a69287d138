"""``POST /v1/register/vehicles``: the vehicle register's feed (DESIGN §11), for
``registrar`` accounts (bearer tokens). The body is read as the insurers' batches are
(``api/bodies.py`` spools it, ``services/event_lines.py`` reads it a line at a time):
the same limits (413), media types (415), line numbering and batch answer shape (§3)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ctplhub.api.bodies import require_media_type, spool_body
from ctplhub.api.deps import bearer, services
from ctplhub.api.presenters import error_body
from ctplhub.api.routers.events import stream_batch_answer
from ctplhub.api.schemas import RegisterBatchAnswer
from ctplhub.domain.errors import PayloadTooLarge
from ctplhub.domain.register import REGISTER_FIELDS
from ctplhub.services.event_lines import CSV, NDJSON, count_lines, read_lines
from ctplhub.services.register_feed import RegisterFeed
from ctplhub.services.report_events import LineStatus, RawLine

REGISTRAR_ROLES = ("registrar",)


def build_router(feed: RegisterFeed) -> APIRouter:
    router = APIRouter(tags=["register"])

    @router.post(
        "/v1/register/vehicles",
        summary="Feed the vehicle register: up to 100,000 lines as NDJSON or CSV",
        description=(
            'Each line `{"vin", "plate", "vehicle_type", "region_code", "status": '
            '"registered"|"scrapped"|"deregistered", "as_of"}` (a CSV header names these '
            "fields, line 0). Lines are history: an older `as_of` is stored too. A repeated "
            "line is `duplicate`; the same VIN and `as_of` with other content is rejected "
            "with `conflict`."
        ),
        response_model=RegisterBatchAnswer,
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
    async def feed_vehicles(request: Request) -> Response:
        app = services(request)
        await run_in_threadpool(bearer, request, *REGISTRAR_ROLES)
        kind = require_media_type(request, NDJSON, CSV)
        spool, _ = await spool_body(request, app.limits.batch_bytes)
        try:
            count = await run_in_threadpool(count_lines, spool, kind)
            if count > app.limits.batch_lines:
                raise PayloadTooLarge(
                    f"a feed holds at most {app.limits.batch_lines:,} lines; this one has {count:,}"
                )
            lines = read_lines(spool, kind, REGISTER_FIELDS)
            counts, results = await run_in_threadpool(_run_feed, feed, lines)
        finally:
            spool.close()
        return StreamingResponse(
            stream_batch_answer(counts, results), media_type="application/json"
        )

    return router


def _run_feed(feed: RegisterFeed, lines: Iterator[RawLine]) -> tuple[dict[str, int], IO[bytes]]:
    """Store the feed; its results go to a temporary file, so memory stays flat."""
    counts = dict.fromkeys((s.value for s in LineStatus), 0)
    out = tempfile.SpooledTemporaryFile(max_size=4 << 20)  # noqa: SIM115 - streamed, then closed
    try:
        first = True
        for result in feed.feed(lines):
            counts[result.status.value] += 1
            body: dict[str, object] = {"line": result.line, "status": result.status.value}
            if result.error is not None:
                body["error"] = error_body(result.error)
            out.write(b"" if first else b",")
            out.write(orjson.dumps(body))
            first = False
    except BaseException:
        out.close()
        raise
    # A large feed leaves the register's statistics fresh for the daily match's plan.
    feed.refresh_statistics(counts[LineStatus.ACCEPTED.value])
    out.seek(0)
    return counts, out
