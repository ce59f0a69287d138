"""The regulators' statistics page, ``/staff/stats`` (DESIGN §11; issue 12 item 5), for
a signed-in regulator: renewals by insurer, region or month for a period, the expiring
volume of the next 90 days and the vehicles lapsed now by region, each as a table with
a server-rendered SVG chart (``web/stats_charts.py``) and its CSV at
``/staff/stats/{renewals,expiring,lapses}.csv`` (the API's CSV, same parameters).

The figures are the API's, from the same use case (``services/stats.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.domain.errors import DomainError
from ctplhub.services import stats_csv
from ctplhub.services.staff_sessions import StaffSession, StaffSessions
from ctplhub.services.stats import Statistics
from ctplhub.web.staff import Cookies, _render, role_page
from ctplhub.web.stats_charts import days_chart, lapse_chart, renewal_chart

REGULATOR_ROLES = ("regulator",)


def _params(request: Request, *names: str) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in names}


def _refused(
    request: Request, session: StaffSession, asked: dict[str, str], problem: DomainError
) -> Response:
    return _render(
        request, "staff_stats.html", 400, session=session, asked=asked, error=problem.message
    )


def build_router(sessions: StaffSessions, stats: Statistics, cookies: Cookies) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    regulator_page = role_page(sessions, cookies, REGULATOR_ROLES)

    async def stats_page(request: Request, session: StaffSession) -> Response:
        asked = _params(request, "group_by", "from", "to")
        try:
            renewals = await run_in_threadpool(stats.renewals, asked)
        except DomainError as problem:
            return _refused(request, session, asked, problem)
        expiring = await run_in_threadpool(stats.expiring, {})
        lapses = await run_in_threadpool(stats.lapses, {"group_by": "region"})
        return _render(
            request,
            "staff_stats.html",
            session=session,
            asked=asked,
            renewals=renewals,
            renewals_chart=renewal_chart(renewals.rows),
            expiring=expiring,
            expiring_chart=days_chart(expiring.rows),
            lapses=lapses,
            lapses_chart=lapse_chart(lapses.rows),
        )

    def download(
        figure: str,
        read: Callable[[dict[str, str]], Any],
        as_csv: Callable[[Any], str],
        *names: str,
    ) -> Callable[[Request, StaffSession], Any]:
        async def csv_file(request: Request, session: StaffSession) -> Response:
            try:
                report = await run_in_threadpool(read, _params(request, *names))
            except DomainError as problem:
                return _refused(request, session, {}, problem)
            return Response(
                as_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="{figure}.csv"',
                    "Cache-Control": "no-store",
                },
            )

        return csv_file

    router.add_api_route("/staff/stats", regulator_page(stats_page), methods=["GET"])
    downloads = (
        download("renewals", stats.renewals, stats_csv.renewals_csv, "group_by", "from", "to"),
        download("expiring", stats.expiring, stats_csv.expiring_csv, "days"),
        download("lapses", stats.lapses, stats_csv.lapses_csv, "group_by"),
    )
    for figure, handler in zip(("renewals", "expiring", "lapses"), downloads, strict=True):
        path = f"/staff/stats/{figure}.csv"
        router.add_api_route(path, regulator_page(handler), methods=["GET"])
    return router
