"""``SqlMatchRuns``: the scheduled daily match's runs (DESIGN §11; migration 0020).

The day is claimed by inserting its row: the primary key (the Beijing date) lets one
insert win on both engines, however many workers try at once. A day whose row is not
done and whose claim has ended is taken over by one conditional ``UPDATE``, which
PostgreSQL's row lock and SQLite's single writer make one-at-a-time too.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ctplhub.services.match_schedule import DONE, FAILED, RUNNING, MatchOutcome, MatchRun
from ctplhub.store.tables import match_runs

_m = match_runs.c


class SqlMatchRuns:
    """``MatchRunStore`` on ``match_runs``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(
        self,
        run_date: str,
        at: datetime,
        worker_id: str,
        now: datetime,
        lease: timedelta,
        max_attempts: int,
    ) -> bool:
        owner = worker_id[:64]
        with self._engine.connect() as conn:  # the usual case, a day already done: no write
            status = conn.execute(select(_m.status).where(_m.run_date == run_date)).scalar()
        if status == DONE:
            return False
        if status is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        insert(match_runs).values(
                            run_date=run_date,
                            at=at,
                            status=RUNNING,
                            claimed_by=owner,
                            claimed_until=now + lease,
                            attempts=1,
                            started_at=now,
                        )
                    )
                return True
            except IntegrityError:
                pass  # another worker's insert won; its claim may still be over, below
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(match_runs)
                .where(
                    _m.run_date == run_date,
                    _m.status != DONE,
                    _m.claimed_until <= now,
                    _m.attempts < max_attempts,
                )
                .values(
                    status=RUNNING,
                    claimed_by=owner,
                    claimed_until=now + lease,
                    attempts=_m.attempts + 1,
                    started_at=now,
                    error=None,
                )
            ).rowcount
        return taken == 1

    def finish(
        self, run_date: str, worker_id: str, now: datetime, duration_s: float, out: MatchOutcome
    ) -> bool:
        with self._engine.begin() as conn:
            stored = conn.execute(
                update(match_runs)
                .where(
                    _m.run_date == run_date,
                    _m.claimed_by == worker_id[:64],
                    _m.status == RUNNING,
                )
                .values(
                    status=DONE,
                    finished_at=now,
                    duration_s=duration_s,
                    uninsured=out.uninsured,
                    unmatched=out.unmatched,
                    counts=out.counts,
                )
            ).rowcount
        return stored == 1

    def fail(
        self, run_date: str, worker_id: str, now: datetime, retry_at: datetime, error: str
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(match_runs)
                .where(
                    _m.run_date == run_date,
                    _m.claimed_by == worker_id[:64],
                    _m.status == RUNNING,
                )
                .values(status=FAILED, finished_at=now, claimed_until=retry_at, error=error[:64])
            )

    def latest(self, limit: int) -> list[MatchRun]:
        query = select(match_runs).order_by(_m.run_date.desc()).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            MatchRun(
                run_date=r["run_date"],
                at=r["at"],
                status=r["status"],
                claimed_by=r["claimed_by"],
                attempts=r["attempts"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                duration_s=r["duration_s"],
                uninsured=r["uninsured"],
                unmatched=r["unmatched"],
                counts=json.loads(r["counts"]) if r["counts"] is not None else None,
                error=r["error"],
            )
            for r in rows
        ]
