"""Use case: the daily match runs by itself (DESIGN §11; issue 12), in ``ctplhub worker``.

Once a day, at a set hour of Beijing time (``CTPLHUB_MATCH_HOUR``, 02:00 by default),
the worker runs the match of ``ctplhub match`` at that day's scheduled instant, so every
worker agrees on the instant and a late start gives the same figures. Any number of
workers may look: the day is claimed by one row keyed by its Beijing date, and only the
worker whose claim stored it runs the match. A worker that dies mid-match holds the day
for ``lease`` only; a match that failed is tried again after ``retry_after``, at most
``max_attempts`` times a day. A day the workers were all down is not run afterwards: the
next day's match answers the same questions at a later instant.

Each run records its instant, duration and counts (figures only, never a vehicle), for
``ctplhub match --status``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import Protocol

from ctplhub.domain.instants import BEIJING
from ctplhub.services.enforcement import Enforcement, MatchReport

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass(frozen=True, slots=True)
class MatchRun:
    run_date: str  # the Beijing day, YYYY-MM-DD
    at: datetime  # the match's instant
    status: str  # RUNNING, DONE or FAILED
    claimed_by: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    uninsured: int | None
    unmatched: int | None
    counts: dict[str, object] | None  # {"uninsured_by_region", "unmatched_by_insurer"}
    error: str | None  # the failure's error type


@dataclass(frozen=True, slots=True)
class MatchOutcome:
    uninsured: int
    unmatched: int
    counts: str  # JSON of {"uninsured_by_region", "unmatched_by_insurer"}


class MatchRunStore(Protocol):
    def claim(
        self,
        run_date: str,
        at: datetime,
        worker_id: str,
        now: datetime,
        lease: timedelta,
        max_attempts: int,
    ) -> bool:
        """Take the day for ``worker_id``: True when no row held it, or its row is not
        done and its claim ended before ``now`` with attempts left; False otherwise."""
        ...

    def finish(
        self, run_date: str, worker_id: str, now: datetime, duration_s: float, out: MatchOutcome
    ) -> bool:
        """Record the done run; False, storing nothing, if the day is no longer ours."""
        ...

    def fail(
        self, run_date: str, worker_id: str, now: datetime, retry_at: datetime, error: str
    ) -> None: ...

    def latest(self, limit: int) -> list[MatchRun]:
        """The last ``limit`` days' runs, newest first."""
        ...


def outcome(report: MatchReport) -> MatchOutcome:
    unmatched = report.unmatched_by_insurer
    counts = {
        "uninsured_by_region": dict(sorted(report.uninsured_by_region.items())),
        "unmatched_by_insurer": dict(sorted(unmatched.items())),
    }
    return MatchOutcome(
        sum(report.uninsured_by_region.values()),
        sum(sum(c.values()) for c in unmatched.values()),
        json.dumps(counts, ensure_ascii=False),
    )


class ScheduledMatch:
    def __init__(
        self,
        enforcement: Enforcement,
        store: MatchRunStore,
        *,
        hour: int = 2,
        lease: timedelta = timedelta(hours=1),
        retry_after: timedelta = timedelta(minutes=15),
        max_attempts: int = 3,
        worker_id: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= hour <= 23:
            raise ValueError("the match's hour is 0 to 23 (Beijing time)")
        self._enforcement = enforcement
        self._store = store
        self._hour = hour
        self._lease = lease
        self._retry_after = retry_after
        self._max_attempts = max_attempts
        self.worker_id = worker_id or f"match-{uuid.uuid4().hex[:16]}"
        self._monotonic = monotonic

    def scheduled(self, now: datetime) -> tuple[str, datetime] | None:
        """The Beijing day and its match instant when that instant has come by ``now``."""
        day: date = now.astimezone(BEIJING).date()
        at = datetime.combine(day, day_time(self._hour), tzinfo=BEIJING)
        return (day.isoformat(), at) if now >= at else None

    async def run_if_due(self, now: datetime) -> MatchRun | None:
        """Run the day's match if it is due and this worker wins the day; the run as
        recorded, or None when there was nothing for this worker to do."""
        due = self.scheduled(now)
        if due is None:
            return None
        run_date, at = due
        claimed = await asyncio.to_thread(
            self._store.claim, run_date, at, self.worker_id, now, self._lease, self._max_attempts
        )
        if not claimed:
            return None
        started = self._monotonic()
        try:
            report = await self._enforcement.match(at)
        except Exception as error:
            failed_at = self._enforcement.now()
            retry_at = failed_at + self._retry_after
            name = type(error).__name__
            await asyncio.to_thread(
                self._store.fail, run_date, self.worker_id, failed_at, retry_at, name
            )
            raise
        duration = self._monotonic() - started
        finished = self._enforcement.now()
        await asyncio.to_thread(
            self._store.finish, run_date, self.worker_id, finished, duration, outcome(report)
        )
        latest = await asyncio.to_thread(self._store.latest, 1)
        return next((r for r in latest if r.run_date == run_date), None)

    def status(self, limit: int = 7) -> list[MatchRun]:
        return self._store.latest(limit)
