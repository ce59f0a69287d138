"""Statistics for regulators (DESIGN §11): renewals, the expiring volume, lapses, as
JSON or, with ``Accept: text/csv``, as CSV. Read from the aggregates that the refresh
keeps (``services/stats.py``), never from a scan of the policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from ctplhub.api import presenters_stats as present
from ctplhub.api.deps import bearer
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas_stats import ExpiringAnswer, LapsesAnswer, RenewalsAnswer
from ctplhub.services import stats_csv
from ctplhub.services.stats import Statistics

STATS_ROLES = ("regulator",)


def _answer(
    request: Request, report: Any, as_json: Callable[[Any], Any], as_csv: Callable[[Any], str]
) -> Response:
    if "text/csv" in request.headers.get("accept", ""):
        return Response(as_csv(report), media_type="text/csv; charset=utf-8")
    return JSONBody(as_json(report))


def build_router(stats: Statistics) -> APIRouter:
    router = APIRouter(tags=["statistics"])

    @router.get(
        "/v1/stats/renewals",
        summary="Renewal figures of the policies due in a period, by insurer, region or month",
        description=(
            "`from` and `to` are Beijing calendar days (`YYYY-MM-DD`, both included) of the "
            "cover's end; `to` is cut to yesterday, the last complete day (default: the 365 "
            "days to yesterday; at most 3,660 days). A policy is due when its cover ends in "
            "the period, renewed on time when the vehicle is covered at that end instant, "
            "renewed late when a later policy starts after a gap, lapsed otherwise; "
            "`renewal_rate` = (on time + late) / due. `Accept: text/csv` answers the rows "
            "as CSV."
        ),
        response_model=RenewalsAnswer,
    )
    async def renewals(
        request: Request,
        group_by: Annotated[str | None, Query(description="insurer (default), region, month")] = (
            None
        ),
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: Annotated[str | None, Query()] = None,
    ) -> Response:
        await run_in_threadpool(bearer, request, *STATS_ROLES)
        params = {"group_by": group_by or "", "from": from_ or "", "to": to or ""}
        report = await run_in_threadpool(stats.renewals, params)
        return _answer(request, report, present.renewals_json, stats_csv.renewals_csv)

    @router.get(
        "/v1/stats/expiring",
        summary="Policies ending on each of the next days whose vehicle has no next policy yet",
        description="`days` 1-366 (default 90): one row per day from tomorrow (Beijing time).",
        response_model=ExpiringAnswer,
    )
    async def expiring(
        request: Request, days: Annotated[str | None, Query(description="1-366")] = None
    ) -> Response:
        await run_in_threadpool(bearer, request, *STATS_ROLES)
        report = await run_in_threadpool(stats.expiring, {"days": days or ""})
        return _answer(request, report, present.expiring_json, stats_csv.expiring_csv)

    @router.get(
        "/v1/stats/lapses",
        summary="Vehicles lapsed now, by region (or insurer) of their last policy",
        description="`median_days_lapsed` is the median of §2.5's `days_lapsed` of the group.",
        response_model=LapsesAnswer,
    )
    async def lapses(
        request: Request,
        group_by: Annotated[str | None, Query(description="region (default), insurer")] = None,
    ) -> Response:
        await run_in_threadpool(bearer, request, *STATS_ROLES)
        report = await run_in_threadpool(stats.lapses, {"group_by": group_by or ""})
        return _answer(request, report, present.lapses_json, stats_csv.lapses_csv)

    return router
