"""What the statistics use case needs from storage (DESIGN §11), and the plain records
that cross the port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


class GroupBy(StrEnum):
    INSURER = "insurer"
    REGION = "region"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class RefreshStep:
    events: int  # events taken past the watermark
    vehicles: int  # vehicles recomputed
    last_event_id: int  # the watermark after the step
    done: bool  # nothing more is ready


@dataclass(frozen=True, slots=True)
class RenewalCount:
    key: str
    due: int
    on_time: int
    late: int
    unrenewed: int


@dataclass(frozen=True, slots=True)
class LastCoverCount:
    key: str
    last_end: datetime
    vehicles: int


class StatsStore(Protocol):
    def refresh_step(self, limit: int, cutoff: datetime | None, now: datetime) -> RefreshStep: ...

    def pending(self, cutoff: datetime | None) -> bool: ...

    def refreshed_at(self) -> datetime | None: ...

    def renewals(self, group_by: GroupBy, first: date, last: date) -> list[RenewalCount]: ...

    def unrenewed_by_day(self, first: date, last: date) -> dict[date, int]: ...

    def last_covers(self, group_by: GroupBy, until: datetime) -> list[LastCoverCount]: ...
