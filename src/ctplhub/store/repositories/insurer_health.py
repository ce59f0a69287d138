"""The reads behind sync health and late reports (DESIGN §2.6, §10): the activity
counters per insurer and minute, and each stored event's reporting delay.

Reporting delays are read from ``policy_events`` by ``received_at`` range and insurer
through ``ix_events_received_insurer`` (migration 0012); a month of a large insurer is
streamed through a server-side cursor, never held as rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, select

from ctplhub.services.ports import InsurerRecord
from ctplhub.store.repositories.insurers import SqlInsurerRepository
from ctplhub.store.tables import insurer_activity, policy_events

_CHUNK = 20_000


def _beijing_day(conn_dialect: str, column: Any) -> Any:
    """The Beijing calendar day of a UTC instant column, as ``YYYY-MM-DD`` text."""
    if conn_dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM-DD")
    return func.date(column, "+8 hours")


class SqlInsurerHealth:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def insurers(self) -> list[InsurerRecord]:
        with self._engine.connect() as conn:
            return SqlInsurerRepository(conn).all()

    def activity(self, since: datetime) -> dict[str, tuple[int, int, int, int]]:
        """Per insurer: accepted and rejected since ``since``, then in total."""
        c = insurer_activity.c
        recent = c.minute >= since
        query = select(
            c.insurer_code,
            func.sum(case((recent, c.accepted), else_=0)),
            func.sum(case((recent, c.rejected), else_=0)),
            func.sum(c.accepted),
            func.sum(c.rejected),
        ).group_by(c.insurer_code)
        with self._engine.connect() as conn:
            return {
                code: (int(a or 0), int(r or 0), int(at or 0), int(rt or 0))
                for code, a, r, at, rt in conn.execute(query)
            }

    def daily_activity(self, since: datetime) -> list[tuple[str, str, int, int]]:
        """``(insurer_code, Beijing day, accepted, rejected)`` since ``since``."""
        c = insurer_activity.c
        day = _beijing_day(self._dialect, c.minute).label("day")
        query = (
            select(c.insurer_code, day, func.sum(c.accepted), func.sum(c.rejected))
            .where(c.minute >= since)
            .group_by(c.insurer_code, day)
        )
        with self._engine.connect() as conn:
            return [(code, str(d), int(a), int(r)) for code, d, a, r in conn.execute(query)]

    def delays(
        self, insurer_code: str, since: datetime, until: datetime
    ) -> Iterator[tuple[datetime, float]]:
        """``(received_at, received_at - occurred_at in seconds)`` of each event of the
        insurer received in ``[since, until)``, streamed."""
        e = policy_events.c
        query = select(e.received_at, e.occurred_at).where(
            e.insurer_code == insurer_code, e.received_at >= since, e.received_at < until
        )
        with self._engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=_CHUNK).execute(query)
            for received, occurred in rows:
                yield received, (received - occurred).total_seconds()
