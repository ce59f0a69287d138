"""Regulator pages under /staff (issue 10 items 1 and 3), for a signed-in regulator:

- ``/staff/insurers``: every insurer at a glance (certification, watermark, lag, accepted
  and rejected in the last 24 h and in total, late reports and median reporting delay of
  the last 24 h), each with an SVG chart of accepted and rejected per day for the last 30
  days, rendered here (no script, no chart library, nothing from another origin);
- ``/staff/compliance?month=YYYY-MM``: every insurer's late reports for the month, each
  with its CSV report at ``/staff/compliance.csv?insurer=CODE&month=YYYY-MM`` (the same
  CSV as ``GET /v1/insurers/{code}/compliance.csv``);
- ``/staff/forecast?days=N``: the lapse forecast of the vehicles expiring within N days
  (default 30) by region, as a bar chart and a table, with its CSV at
  ``/staff/forecast.csv?days=N`` (the same CSV as ``GET /v1/forecast/lapse-risk``), both
  read from the day's stored forecast (``services/forecast.py``).

Sessions, cookies and the page frame are the staff pages' own (``web/staff.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.domain.errors import DomainError
from ctplhub.domain.reporting_delays import Month
from ctplhub.services.compliance import Compliance, report_csv
from ctplhub.services.forecast import MAX_DAYS, LapseForecast, groups_csv
from ctplhub.services.staff_sessions import StaffSession, StaffSessions
from ctplhub.services.sync_health import SyncHealth
from ctplhub.web.charts import activity_chart, risk_chart
from ctplhub.web.staff import Cookies, _render, role_page

REGULATOR_ROLES = ("regulator",)


def build_router(
    sessions: StaffSessions,
    health: SyncHealth,
    compliance: Compliance,
    cookies: Cookies,
    forecast: LapseForecast,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    regulator_page = role_page(sessions, cookies, REGULATOR_ROLES)

    async def insurers_page(request: Request, session: StaffSession) -> Response:
        rows = await run_in_threadpool(health.all)
        charts = {c.insurer_code: c for c in await run_in_threadpool(health.charts)}
        drawn = {code: activity_chart(chart.days) for code, chart in charts.items()}
        return _render(
            request,
            "staff_insurers.html",
            session=session,
            rows=rows,
            charts=drawn,
        )

    def month_of(request: Request) -> str:
        return request.query_params.get("month") or str(Month.of(datetime.now(UTC)))

    async def compliance_page(request: Request, session: StaffSession) -> Response:
        month = month_of(request)
        try:
            reports = await run_in_threadpool(compliance.every_insurer, month)
        except DomainError as problem:
            return _render(
                request,
                "staff_compliance.html",
                400,
                session=session,
                month=month,
                error=problem.message,
            )
        return _render(
            request,
            "staff_compliance.html",
            session=session,
            month=month,
            reports=reports,
            late_after_s=compliance.late_after_s,
        )

    async def compliance_csv(request: Request, session: StaffSession) -> Response:
        code = (request.query_params.get("insurer") or "").upper()
        try:
            report = await run_in_threadpool(compliance.month, code, month_of(request))
        except DomainError as problem:
            return _render(
                request,
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

    def days_of(request: Request) -> int:
        raw = request.query_params.get("days") or "30"
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
            return 0
        return int(raw)

    async def forecast_page(request: Request, session: StaffSession) -> Response:
        days = days_of(request)
        if not days:
            return _render(
                request, "staff_forecast.html", 400, session=session, days=30, error="bad_days"
            )
        rows = (await run_in_threadpool(forecast.daily, "region", days)).rows
        return _render(
            request,
            "staff_forecast.html",
            session=session,
            days=days,
            rows=rows,
            chart=risk_chart(rows),
        )

    async def forecast_csv(request: Request, session: StaffSession) -> Response:
        days = days_of(request) or 30
        rows = (await run_in_threadpool(forecast.daily, "region", days)).rows
        return Response(
            groups_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="lapse-risk-{days}d.csv"',
                "Cache-Control": "no-store",
            },
        )

    router.add_api_route("/staff/insurers", regulator_page(insurers_page), methods=["GET"])
    router.add_api_route("/staff/forecast", regulator_page(forecast_page), methods=["GET"])
    router.add_api_route("/staff/forecast.csv", regulator_page(forecast_csv), methods=["GET"])
    router.add_api_route("/staff/compliance", regulator_page(compliance_page), methods=["GET"])
    router.add_api_route("/staff/compliance.csv", regulator_page(compliance_csv), methods=["GET"])
    return router
