"""``GET /v1/forecast/lapse-risk`` (issue 12 item 6; docs/forecast.md): for regulators,
the vehicles expiring in the next ``days`` summed by region (or province, vehicle type,
use nature): how many, the lapses the model expects among them, their mean risk and how
many are in the riskiest tenth. Aggregates only: no vehicle is named. JSON, or CSV with
``Accept: text/csv``.

Without ``at`` the answer is the day's stored forecast (``services/forecast.py``): ``at``
is its instant (that day's 00:00 Beijing) and ``computed_at`` when it was computed. With
``at``, the forecast stored at that instant if there is one, else computed per request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from ctplhub.api.deps import bearer
from ctplhub.api.responses import JSONBody
from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.instants import format_instant, parse_instant
from ctplhub.services.forecast import MAX_DAYS, LapseForecast, RiskGroup, groups_csv

FORECAST_ROLES = ("regulator",)


class RiskGroupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    vehicles: int
    expected_lapses: float
    mean_risk: float
    top_decile: int


class LapseRiskAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str
    computed_at: str
    days: int
    group_by: str
    top_decile_risk: float
    rows: list[RiskGroupBody]


def group_json(row: RiskGroup) -> dict[str, Any]:
    return {
        "key": row.key,
        "vehicles": row.vehicles,
        "expected_lapses": row.expected_lapses,
        "mean_risk": row.mean_risk,
        "top_decile": row.top_decile,
    }


def days_of(raw: str | None) -> int:
    if raw is None:
        return 30
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise ValidationFailed(
            f"days must be a whole number from 1 to {MAX_DAYS}",
            details=[{"field": "days", "problem": f"between 1 and {MAX_DAYS}"}],
        )
    return int(raw)


def build_router(forecast: LapseForecast) -> APIRouter:
    router = APIRouter(tags=["statistics"])

    @router.get(
        "/v1/forecast/lapse-risk",
        summary="Lapse risk of the vehicles expiring soon, summed by region (regulators)",
        description=(
            "`group_by` region (default), province, vehicle_type or use_nature; `days` "
            f"1-{MAX_DAYS} (default 30); `at` an RFC 3339 instant. Without `at`, the day's "
            "stored forecast: `at` is its instant (the day's 00:00 Beijing time) and "
            "`computed_at` when it was computed. "
            "`expected_lapses` is the sum of the model's risks, `top_decile` the vehicles "
            "in its riskiest tenth (they get an early reminder). `Accept: text/csv` answers "
            "CSV (`key,vehicles,expected_lapses,mean_risk,top_decile`)."
        ),
        response_model=LapseRiskAnswer,
    )
    async def lapse_risk(request: Request) -> Response:
        await run_in_threadpool(bearer, request, *FORECAST_ROLES)
        query = request.query_params
        at_raw = query.get("at")
        at = parse_instant(at_raw, "at") if at_raw is not None else None
        days = days_of(query.get("days"))
        group_by = query.get("group_by") or "region"
        if at is None:
            found = await run_in_threadpool(forecast.daily, group_by, days)
        else:
            found = await run_in_threadpool(forecast.at, at, group_by, days)
        rows = found.rows
        if "text/csv" in request.headers.get("accept", ""):
            return Response(groups_csv(rows), media_type="text/csv; charset=utf-8")
        return JSONBody(
            {
                "at": format_instant(found.as_of),
                "computed_at": format_instant(found.computed_at),
                "days": days,
                "group_by": group_by,
                "top_decile_risk": round(forecast.top_decile, 4),
                "rows": [group_json(r) for r in rows],
            }
        )

    return router
