"""Vehicle histories for the lapse forecast (``services/forecast.py``'s port).

Each call is its own short read: the forecast reads, never writes. VINs go in chunks of
an ``IN`` list; the expiring window uses ``ix_policies_coverage_end`` and a vehicle's
rows ``ix_policies_vin`` / ``ix_events_vin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, exists, select
from sqlalchemy.orm import aliased

from ctplhub.domain.lapse_risk import PastPolicy, VehicleHistory
from ctplhub.services.reminder_ports import KIND_CANCELLED, SENT
from ctplhub.store.tables import policies, policy_events, reminders

_CHUNK = 1000
_p = policies.c
_e = policy_events.c
_r = reminders.c


class SqlVehicleHistories:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def expiring(self, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
        later = aliased(policies, name="later")
        renewed = exists().where(
            later.c.vin == _p.vin,
            later.c.coverage_end > _p.coverage_end,
            later.c.event_type != "cancel",
        )
        query = (
            select(_p.vin, _p.coverage_end)
            .where(
                _p.coverage_end > since,
                _p.coverage_end <= until,
                _p.event_type.not_in(("cancel", "surrender")),
                ~renewed,
            )
            .order_by(_p.vin, _p.coverage_end)
        )
        with self._engine.connect() as conn:
            # A vehicle with two covers ending in the window (duplicate cover) is one row.
            return list(dict(conn.execute(query).all()).items())

    def histories(self, vins: Sequence[str], at: datetime) -> dict[str, VehicleHistory]:
        found: dict[str, VehicleHistory] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(vins), _CHUNK):
                chunk = list(vins[start : start + _CHUNK])
                found.update(self._chunk(conn, chunk, at))
        return found

    def _chunk(self, conn: Connection, vins: list[str], at: datetime) -> dict[str, VehicleHistory]:
        heads = conn.execute(
            select(
                _p.vin,
                _p.insurer_code,
                _p.event_type,
                _p.coverage_start,
                _p.coverage_end,
                _p.effective_at,
                _e.occurred_at,
                _e.vehicle_type,
                _e.use_nature,
                _e.region_code,
            )
            .select_from(
                policies.join(
                    policy_events,
                    and_(
                        _e.insurer_code == _p.insurer_code,
                        _e.policy_no == _p.policy_no,
                        _e.version == 1,
                    ),
                )
            )
            .where(_p.vin.in_(vins), _e.occurred_at <= at)
            .order_by(_p.vin, _p.coverage_start)
        ).all()
        sent = conn.execute(
            select(_r.vin, _r.covered_until).where(
                _r.vin.in_(vins),
                _r.state == SENT,
                _r.sent_at <= at,
                _r.dispute_id == 0,  # a dispute's notices are not about renewal
                _r.rule != KIND_CANCELLED,
            )
        ).all()
        reminded: dict[str, list[datetime]] = {}
        for vin, covered_until in sent:
            reminded.setdefault(vin, []).append(covered_until)
        rows: dict[str, list[PastPolicy]] = {}
        latest: dict[str, tuple[str, str, str]] = {}
        for vin, code, kind, begin, end, cut, issued, vtype, use, region in heads:
            if kind == "cancel":
                continue  # void from inception: never covered
            if kind == "surrender" and cut is not None:
                end = min(end, cut)
            if end <= begin:
                continue
            rows.setdefault(vin, []).append(PastPolicy(code, issued, begin, end))
            latest[vin] = (vtype, use, region)  # rows come oldest start first
        return {
            vin: VehicleHistory(
                vin, *latest[vin], tuple(policies_of), tuple(sorted(reminded.get(vin, ())))
            )
            for vin, policies_of in rows.items()
        }
