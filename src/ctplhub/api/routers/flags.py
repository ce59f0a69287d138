"""``GET /v1/insurers/{code}/flags``: an insurer's data-quality flags (issue 10 item 6,
``services/quality_flags.py``), for the insurer itself (signed) or a regulator."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api.deps import bearer, insurer_of
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import QualityFlagsAnswer
from ctplhub.domain.instants import format_instant
from ctplhub.services.quality_flags import FlagPage, QualityFlags

FLAG_ROLES = ("regulator",)


def answer(page: FlagPage) -> dict[str, object]:
    return {
        "insurer_code": page.insurer_code,
        "flags": [
            {
                "flag_id": f.flag_id,
                "policy_no": f.policy_no,
                "version": f.version,
                "code": f.code,
                "message": f.message,
                "flagged_at": format_instant(f.flagged_at),
            }
            for f in page.flags
        ],
        "next_cursor": page.next_cursor,
    }


def build_router(flags: QualityFlags) -> APIRouter:
    router = APIRouter(tags=["insurers"])

    @router.get(
        "/v1/insurers/{code}/flags",
        summary="Data-quality flags on this insurer's accepted events, newest first",
        response_model=QualityFlagsAnswer,
        openapi_extra={
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "description": "next_cursor of the previous page",
                    "schema": {"type": "integer", "minimum": 1},
                },
            ]
        },
    )
    async def list_flags(code: str, request: Request) -> Response:
        code = code.upper()
        caller = None
        if request.headers.get("authorization"):
            await run_in_threadpool(bearer, request, *FLAG_ROLES)
        else:
            caller = await insurer_of(request)
        query = request.query_params
        page = await run_in_threadpool(
            lambda: flags.page(
                code, caller=caller, cursor=query.get("cursor"), limit=query.get("limit")
            )
        )
        return JSONBody(answer(page))

    return router
