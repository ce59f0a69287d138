"""What one vehicle contributes to the regulators' statistics (DESIGN §11).

A policy is *due* when its cover ends; it was *renewed on time* when the vehicle is
covered at that end instant (by another policy: intervals are half-open), *renewed
late* when not, but a policy of the vehicle starts after it, and is *unrenewed*
otherwise (a lapse once the end instant has passed). A vehicle's *last cover end* is
the latest end of its policies' cover: the vehicle is ``LAPSED`` (§2.5) exactly when
that instant has passed, and it is then ``lapsed_since``.

These are pure functions of the vehicle's policies at their ruling versions, so a
refresh can recompute any vehicle from scratch and subtract what it held before: the
order events arrive in never changes a figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from ctplhub.domain.instants import BEIJING

_DAY = timedelta(days=1)


class Outcome(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    UNRENEWED = "unrenewed"


@dataclass(frozen=True, slots=True)
class PolicyCover:
    """A policy's real cover ``[start, end)`` (a cancel has none; a surrender ends at its
    ``effective_at``), with the keys the figures are grouped by."""

    insurer_code: str
    policy_no: str
    region_code: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    insurer_code: str
    policy_no: str
    region_code: str
    end: datetime
    outcome: Outcome

    @property
    def end_day(self) -> date:
        return beijing_day(self.end)


@dataclass(frozen=True, slots=True)
class LastCover:
    """The end of a vehicle's last cover and the policy that held it."""

    end: datetime
    insurer_code: str
    region_code: str


def beijing_day(instant: datetime) -> date:
    """The calendar day (Beijing time) an instant falls on: the figures' day."""
    return instant.astimezone(BEIJING).date()


def policy_outcomes(covers: Sequence[PolicyCover]) -> list[PolicyOutcome]:
    """Each policy's renewal outcome at its end instant, from the vehicle's covers."""
    found = []
    for policy in covers:
        end = policy.end
        others = [c for c in covers if c is not policy]
        if any(c.start <= end < c.end for c in others):
            outcome = Outcome.ON_TIME
        elif any(c.start > end for c in others):
            outcome = Outcome.LATE
        else:
            outcome = Outcome.UNRENEWED
        found.append(
            PolicyOutcome(policy.insurer_code, policy.policy_no, policy.region_code, end, outcome)
        )
    return found


def last_cover(covers: Iterable[PolicyCover]) -> LastCover | None:
    """The latest end; on a tie the policy first by (insurer, number), so the pick never
    depends on input order."""
    best = min(
        covers, key=lambda c: (-c.end.timestamp(), c.insurer_code, c.policy_no), default=None
    )
    return None if best is None else LastCover(best.end, best.insurer_code, best.region_code)


def days_lapsed(since: datetime, at: datetime) -> int:
    """§2.5's ``days_lapsed``: whole days from ``lapsed_since`` to ``at``."""
    return (at - since) // _DAY


def weighted_median(counts: Sequence[tuple[int, int]]) -> float | None:
    """The median of values given as (value, how many times), e.g. days lapsed per
    vehicle; the mean of the two middle values when the total is even."""
    total = sum(n for _, n in counts)
    if total == 0:
        return None
    ordered = sorted(counts)
    low_rank, high_rank = (total - 1) // 2, total // 2
    seen = 0
    low: int | None = None
    for value, n in ordered:
        if low is None and seen + n > low_rank:
            low = value
        if seen + n > high_rank:
            assert low is not None
            return (low + value) / 2
        seen += n
    raise AssertionError("unreachable: the ranks lie inside the total")
