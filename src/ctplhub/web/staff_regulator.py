"""Regulator pages under /staff (issue 10 items 1 and 3), for a signed-in regulator:

- ``/staff/insurers``: every insurer at a glance (certification, watermark, lag, accepted
  and rejected in the last 24 h and in total, late reports and median reporting delay of
  the last 24 h), each with an SVG chart of accepted and rejected per day for the last 30
  days, rendered here (no script, no chart library, nothing from another origin);
- ``/staff/compliance?month=YYYY-MM``: every insurer's late reports for the month, each
  with its CSV report at ``/staff/compliance.csv?insurer=CODE&month=YYYY-MM`` (the same
  CSV as ``GET /v1/insurers/{code}/compliance.csv``).

Sessions, cookies and the page frame are the staff pages' own (``web/staff.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from markupsafe import Markup
from starlette.responses import Response

from ctplhub.domain.errors import DomainError
from ctplhub.domain.reporting_delays import Month
from ctplhub.services.compliance import Compliance, report_csv
from ctplhub.services.staff_sessions import StaffSession, StaffSessions
from ctplhub.services.sync_health import SyncHealth
from ctplhub.web.charts import activity_chart
from ctplhub.web.formatting import beijing
from ctplhub.web.staff import Cookies, _render, role_page

REGULATOR_ROLES = ("regulator",)


def _duration(seconds: float | None) -> str:
    """A delay or lag as people read it: ``45 秒``, ``12 分钟``, ``3.5 小时``, ``2.0 天``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} 秒"
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86_400:.1f} 天"


def build_router(
    sessions: StaffSessions, health: SyncHealth, compliance: Compliance, cookies: Cookies
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    regulator_page = role_page(sessions, cookies, REGULATOR_ROLES)

    async def insurers_page(_: Request, session: StaffSession) -> Response:
        rows = await run_in_threadpool(health.all)
        charts = {c.insurer_code: c for c in await run_in_threadpool(health.charts)}
        svg = {
            code: Markup(activity_chart(chart.days, label=f"{code} 近 30 天接收与拒收"))
            for code, chart in charts.items()
        }
        return _render(
            "staff_insurers.html",
            session=session,
            rows=rows,
            charts=svg,
            when=beijing,
            duration=_duration,
        )

    def month_of(request: Request) -> str:
        return request.query_params.get("month") or str(Month.of(datetime.now(UTC)))

    async def compliance_page(request: Request, session: StaffSession) -> Response:
        month = month_of(request)
        try:
            reports = await run_in_threadpool(compliance.every_insurer, month)
        except DomainError as problem:
            return _render(
                "staff_compliance.html", 400, session=session, month=month, error=problem.message
            )
        return _render(
            "staff_compliance.html",
            session=session,
            month=month,
            reports=reports,
            late_after=_duration(compliance.late_after_s),
            duration=_duration,
        )

    async def compliance_csv(request: Request, session: StaffSession) -> Response:
        code = (request.query_params.get("insurer") or "").upper()
        try:
            report = await run_in_threadpool(compliance.month, code, month_of(request))
        except DomainError as problem:
            return _render(
                "staff_compliance.html",
                400,
                session=session,
                month=month_of(request),
                error=problem.message,
            )
        name = f"compliance-{report.insurer_code}-{report.month}.csv"
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    router.add_api_route("/staff/insurers", regulator_page(insurers_page), methods=["GET"])
    router.add_api_route("/staff/compliance", regulator_page(compliance_page), methods=["GET"])
    router.add_api_route("/staff/compliance.csv", regulator_page(compliance_csv), methods=["GET"])
    return router
