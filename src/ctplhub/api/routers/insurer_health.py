"""Sync health and late reports (DESIGN §2.6, §3, §10): read by the insurer itself
(signed) or by a regulator (bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api import presenters_reconcile as present
from ctplhub.api.deps import bearer, insurer_of
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import ComplianceAnswer, SyncHealthBody
from ctplhub.services.compliance import Compliance
from ctplhub.services.sync_health import SyncHealth

# DESIGN §3: the insurer itself (signed) or a regulator (bearer) reads these.
READER_ROLES = ("regulator",)


async def _caller(request: Request) -> str | None:
    """The signed insurer, or None for a regulator with a bearer token."""
    if request.headers.get("authorization"):
        await run_in_threadpool(bearer, request, *READER_ROLES)
        return None
    return await insurer_of(request)


def build_router(health: SyncHealth, compliance: Compliance) -> APIRouter:
    router = APIRouter(tags=["insurers"])

    @router.get(
        "/v1/insurers/{code}/sync",
        summary="Sync health of one insurer (the insurer itself, signed; or a regulator)",
        response_model=SyncHealthBody,
    )
    async def sync(code: str, request: Request) -> Response:
        caller = await _caller(request)
        status = await run_in_threadpool(lambda: health.one(code.upper(), caller=caller))
        return JSONBody(present.sync_health(status))

    @router.get(
        "/v1/insurers/{code}/compliance",
        summary="Late reports of one insurer in one month (Beijing time)",
        response_model=ComplianceAnswer,
    )
    async def month(code: str, request: Request) -> Response:
        caller = await _caller(request)
        report = await run_in_threadpool(
            lambda: compliance.month(code.upper(), request.query_params.get("month"), caller=caller)
        )
        return JSONBody(present.compliance(report))

    @router.get(
        "/v1/insurers/{code}/compliance.csv",
        summary="The monthly late-report as CSV: one row per day, then the month's total",
        response_class=Response,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def month_csv(code: str, request: Request) -> Response:
        caller = await _caller(request)
        report = await run_in_threadpool(
            lambda: compliance.month(code.upper(), request.query_params.get("month"), caller=caller)
        )
        name = f"compliance-{report.insurer_code}-{report.month}.csv"
        return Response(
            present.compliance_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router
