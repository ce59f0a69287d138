"""``SqlForecastStore``: the lapse forecast's stored daily aggregate (issue 12;
migration 0021; ``services/forecast.py``'s ``ForecastStore``).

A day's forecast is written in one transaction, its run row first: the primary key (the
day's instant) lets one insert win on both engines, so two workers storing the same day
leave one forecast. A request reads one index range of ``forecast_totals`` (the key's
prefix ``as_of, group_by``) and sums it by key in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ctplhub.services.forecast import ForecastRun, StoredTotal
from ctplhub.store.tables import forecast_runs, forecast_totals

_r = forecast_runs.c
_t = forecast_totals.c


class SqlForecastStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def run(self, as_of: datetime) -> ForecastRun | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_r.as_of, _r.computed_at, _r.vehicles).where(_r.as_of == as_of)
            ).first()
        return None if row is None else ForecastRun(row[0], row[1], row[2])

    def put(
        self,
        run: ForecastRun,
        totals: Sequence[StoredTotal],
        *,
        replace: bool,
        keep_before: datetime,
    ) -> bool:
        try:
            with self._engine.begin() as conn:
                if replace:
                    conn.execute(delete(forecast_totals).where(_t.as_of == run.as_of))
                    conn.execute(delete(forecast_runs).where(_r.as_of == run.as_of))
                conn.execute(
                    insert(forecast_runs).values(
                        as_of=run.as_of, computed_at=run.computed_at, vehicles=run.vehicles
                    )
                )
                if totals:
                    conn.execute(
                        insert(forecast_totals),
                        [
                            {
                                "as_of": run.as_of,
                                "group_by": t.group_by,
                                "key": t.key,
                                "day": t.day,
                                "vehicles": t.vehicles,
                                "risk_sum": t.risk_sum,
                                "top_decile": t.top_decile,
                            }
                            for t in totals
                        ],
                    )
                conn.execute(delete(forecast_totals).where(_t.as_of < keep_before))
                conn.execute(delete(forecast_runs).where(_r.as_of < keep_before))
        except IntegrityError:
            return False  # another process stored this day's forecast first
        return True

    def totals(
        self, as_of: datetime, group_by: str, days: int
    ) -> list[tuple[str, int, float, int]]:
        query = (
            select(_t.key, func.sum(_t.vehicles), func.sum(_t.risk_sum), func.sum(_t.top_decile))
            .where(_t.as_of == as_of, _t.group_by == group_by, _t.day <= days)
            .group_by(_t.key)
        )
        with self._engine.connect() as conn:
            return [
                (str(key), int(vehicles), float(risk_sum), int(top))
                for key, vehicles, risk_sum, top in conn.execute(query)
            ]
