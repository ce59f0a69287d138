"""The regulators' statistics in SQL (DESIGN §11; migration 0019): the incremental
refresh and the reads of the aggregates.

A refresh step takes the next events past the watermark (in id order), recomputes every
vehicle they touch from its policy heads (``domain/renewal_stats.py``), subtracts what
those vehicles held before (``stats_policies``, ``stats_vehicles``), adds what they hold
now, and moves the watermark, all in one transaction. The step starts by writing the
watermark's row, so two refreshes (a worker, ``serve``, a regulator's request) take
turns on both engines instead of counting one event twice. Ingest is not touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.renewal_stats import (
    LastCover,
    Outcome,
    PolicyCover,
    PolicyOutcome,
    last_cover,
    policy_outcomes,
)
from ctplhub.services.stats_ports import (
    GroupBy,
    LastCoverCount,
    RefreshStep,
    RenewalCount,
)
from ctplhub.store.repositories.clauses import chunks
from ctplhub.store.tables import (
    policies,
    policy_events,
    stats_last_cover,
    stats_policies,
    stats_renewals,
    stats_vehicles,
    stats_watermark,
)

_NAME = "renewals"
_COUNTS = ("due", "on_time", "late", "unrenewed")
_OUTCOME_COLUMN = {Outcome.ON_TIME: 1, Outcome.LATE: 2, Outcome.UNRENEWED: 3}
_GROUP_COLUMN = {
    GroupBy.INSURER: "insurer_code",
    GroupBy.REGION: "region_code",
    GroupBy.MONTH: "end_day",  # folded into months by the service
}
_Key = tuple[str, str, str]  # (end_day or last_end, insurer_code, region_code)


def _dialect(conn: Connection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def _add_counts(conn: Connection, deltas: dict[_Key, list[int]]) -> None:
    changed = [
        {
            "end_day": k[0],
            "insurer_code": k[1],
            "region_code": k[2],
            **dict(zip(_COUNTS, v, strict=True)),
        }
        for k, v in deltas.items()
        if any(v)
    ]
    if not changed:
        return
    stmt = _dialect(conn).insert(stats_renewals)
    stmt = stmt.on_conflict_do_update(
        index_elements=["end_day", "insurer_code", "region_code"],
        set_={c: stats_renewals.c[c] + stmt.excluded[c] for c in _COUNTS},
    )
    conn.execute(stmt, changed)


def _add_last_covers(conn: Connection, deltas: Counter[tuple[datetime, str, str]]) -> None:
    changed = [
        {"last_end": k[0], "insurer_code": k[1], "region_code": k[2], "vehicles": n}
        for k, n in deltas.items()
        if n
    ]
    if not changed:
        return
    stmt = _dialect(conn).insert(stats_last_cover)
    stmt = stmt.on_conflict_do_update(
        index_elements=["last_end", "insurer_code", "region_code"],
        set_={"vehicles": stats_last_cover.c.vehicles + stmt.excluded.vehicles},
    )
    conn.execute(stmt, changed)


def _count(deltas: dict[_Key, list[int]], key: _Key, outcome: str, sign: int) -> None:
    counts = deltas.setdefault(key, [0, 0, 0, 0])
    counts[0] += sign
    counts[_OUTCOME_COLUMN[Outcome(outcome)]] += sign


class SqlStatsStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- the refresh ------------------------------------------------------------------

    def refresh_step(self, limit: int, cutoff: datetime | None, now: datetime) -> RefreshStep:
        """Take up to ``limit`` events past the watermark, stopping at the first one
        received after ``cutoff`` (one that may have committed ahead of an older, still
        open transaction; docs/DECISIONS.md)."""
        with self._engine.begin() as conn:
            after = self._lock_watermark(conn)
            e = policy_events.c
            found = conn.execute(
                select(e.id, e.vin, e.received_at).where(e.id > after).order_by(e.id).limit(limit)
            ).all()
            taken = []
            for row in found:
                if cutoff is not None and row.received_at > cutoff:
                    break
                taken.append(row)
            if not taken:
                return RefreshStep(0, 0, after, done=True)
            last = taken[-1].id
            vins = {r.vin for r in taken} | self._former_vins(conn, after, last)
            self._recompute(conn, sorted(vins))
            conn.execute(
                update(stats_watermark)
                .where(stats_watermark.c.name == _NAME)
                .values(last_event_id=last, refreshed_at=now)
            )
            done = len(found) < limit or len(taken) < len(found)
            return RefreshStep(len(taken), len(vins), last, done=done)

    def _lock_watermark(self, conn: Connection) -> int:
        w = stats_watermark.c
        touched = conn.execute(
            update(stats_watermark).where(w.name == _NAME).values(name=w.name)
        ).rowcount
        if not touched:  # a database made without migration 0019's row: make it, once
            first = _dialect(conn).insert(stats_watermark).values(name=_NAME, last_event_id=0)
            conn.execute(first.on_conflict_do_nothing(index_elements=["name"]))
            conn.execute(update(stats_watermark).where(w.name == _NAME).values(name=w.name))
        value = conn.execute(select(w.last_event_id).where(w.name == _NAME)).scalar_one()
        return int(value)

    def _former_vins(self, conn: Connection, after: int, last: int) -> set[str]:
        """Vehicles that held these events' policies before (an endorsement may move a
        policy to another VIN): they lose its figures."""
        s, e = stats_policies.c, policy_events.c
        joined = stats_policies.join(
            policy_events,
            and_(e.insurer_code == s.insurer_code, e.policy_no == s.policy_no),
        )
        query = select(s.vin).select_from(joined).where(e.id > after, e.id <= last).distinct()
        return set(conn.execute(query).scalars())

    def _recompute(self, conn: Connection, vins: Sequence[str]) -> None:
        covers = self._covers(conn, vins)
        renewals: dict[_Key, list[int]] = {}
        lasts: Counter[tuple[datetime, str, str]] = Counter()
        for part in chunks(conn, vins):
            sp, sv = stats_policies.c, stats_vehicles.c
            held = select(sp.end_day, sp.insurer_code, sp.region_code, sp.outcome)
            for day, insurer, region, outcome in conn.execute(held.where(sp.vin.in_(part))):
                _count(renewals, (day, insurer, region), outcome, -1)
            held_last = select(sv.last_end, sv.insurer_code, sv.region_code)
            for end, insurer, region in conn.execute(held_last.where(sv.vin.in_(part))):
                lasts[(end, insurer, region)] -= 1
            conn.execute(delete(stats_policies).where(sp.vin.in_(part)))
            conn.execute(delete(stats_vehicles).where(sv.vin.in_(part)))
        policy_rows: list[dict[str, Any]] = []
        vehicle_rows: list[dict[str, Any]] = []
        for vin, held_covers in covers.items():
            for found in policy_outcomes(held_covers):
                policy_rows.append(_policy_row(vin, found))
                key = (found.end_day.isoformat(), found.insurer_code, found.region_code)
                _count(renewals, key, found.outcome.value, 1)
            latest = last_cover(held_covers)
            if latest is not None:
                vehicle_rows.append(_vehicle_row(vin, latest))
                lasts[(latest.end, latest.insurer_code, latest.region_code)] += 1
        if policy_rows:
            conn.execute(insert(stats_policies), policy_rows)
        if vehicle_rows:
            conn.execute(insert(stats_vehicles), vehicle_rows)
        _add_counts(conn, renewals)
        _add_last_covers(conn, lasts)

    def _covers(self, conn: Connection, vins: Sequence[str]) -> dict[str, list[PolicyCover]]:
        """Each vehicle's policies at their ruling versions (the heads), with the region
        of the event that rules each, as real cover (``PolicyState.interval``)."""
        p, e = policies.c, policy_events.c
        query = select(
            p.vin,
            p.insurer_code,
            p.policy_no,
            p.version,
            p.event_type,
            p.coverage_start,
            p.coverage_end,
            p.effective_at,
            e.region_code,
        ).select_from(policies.join(policy_events, e.id == p.event_id))
        found: dict[str, list[PolicyCover]] = {}
        for part in chunks(conn, vins):
            for row in conn.execute(query.where(p.vin.in_(part))):
                state = PolicyState(
                    row.insurer_code,
                    row.policy_no,
                    row.version,
                    EventType(row.event_type),
                    row.coverage_start,
                    row.coverage_end,
                    row.effective_at,
                )
                interval = state.interval
                held = found.setdefault(row.vin, [])
                if interval is not None:
                    held.append(
                        PolicyCover(row.insurer_code, row.policy_no, row.region_code, *interval)
                    )
        return found

    def pending(self, cutoff: datetime | None) -> bool:
        """Whether an event past the watermark is ready to be taken."""
        with self._engine.connect() as conn:
            w, e = stats_watermark.c, policy_events.c
            after = conn.execute(select(w.last_event_id).where(w.name == _NAME)).scalar()
            query = select(e.received_at).where(e.id > (after or 0)).order_by(e.id).limit(1)
            first = conn.execute(query).scalar()
        return first is not None and (cutoff is None or first <= cutoff)

    def refreshed_at(self) -> datetime | None:
        with self._engine.connect() as conn:
            w = stats_watermark.c
            return conn.execute(select(w.refreshed_at).where(w.name == _NAME)).scalar()

    # -- the reads --------------------------------------------------------------------

    def renewals(self, group_by: GroupBy, first: date, last: date) -> list[RenewalCount]:
        r = stats_renewals.c
        key = r[_GROUP_COLUMN[group_by]]
        query = (
            select(key, *(func.sum(r[c]) for c in _COUNTS))
            .where(r.end_day >= first.isoformat(), r.end_day <= last.isoformat())
            .group_by(key)
            .order_by(key)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [RenewalCount(row[0], *(int(n or 0) for n in row[1:])) for row in rows]

    def unrenewed_by_day(self, first: date, last: date) -> dict[date, int]:
        r = stats_renewals.c
        query = (
            select(r.end_day, func.sum(r.unrenewed))
            .where(r.end_day >= first.isoformat(), r.end_day <= last.isoformat())
            .group_by(r.end_day)
        )
        with self._engine.connect() as conn:
            return {date.fromisoformat(d): int(n or 0) for d, n in conn.execute(query)}

    def last_covers(self, group_by: GroupBy, until: datetime) -> list[LastCoverCount]:
        """Vehicles by (group, last cover end) whose last cover ended by ``until``."""
        c = stats_last_cover.c
        key = c[_GROUP_COLUMN[group_by]]
        query = (
            select(key, c.last_end, func.sum(c.vehicles))
            .where(c.last_end <= until)
            .group_by(key, c.last_end)
        )
        with self._engine.connect() as conn:
            rows: Iterable[Any] = conn.execute(query).all()
        return [LastCoverCount(k, end, int(n)) for k, end, n in rows if n]


def _policy_row(vin: str, found: PolicyOutcome) -> dict[str, Any]:
    return {
        "insurer_code": found.insurer_code,
        "policy_no": found.policy_no,
        "vin": vin,
        "region_code": found.region_code,
        "end_day": found.end_day.isoformat(),
        "outcome": found.outcome.value,
    }


def _vehicle_row(vin: str, latest: LastCover) -> dict[str, Any]:
    return {
        "vin": vin,
        "last_end": latest.end,
        "insurer_code": latest.insurer_code,
        "region_code": latest.region_code,
    }
