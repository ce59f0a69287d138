"""Coverage status of one vehicle at an instant (DESIGN §2.5).

This is the answer police, owners and insurers ask the registry for, so it is a pure
function of the vehicle's policies and the instant: no clock, no storage, and the same
answer whatever order the policies arrive in. Every interval is half-open ``[start, end)``
because that is how a policy "to 期满日二十四时" is written (DESIGN §2.4); a vehicle is
therefore covered at its start instant and no longer covered at its end instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ctplhub.domain.policy import EventType, state_rank
from ctplhub.domain.records import fast_init

_DAY = timedelta(days=1)

_TEXTS_ZH = {
    "RENEWED": "已续保",
    "ACTIVE": "保障中",
    "EXPIRING_SOON": "即将到期",
    "PENDING_START": "待生效",
    "LAPSED": "已脱保",
    "NO_RECORD": "无记录",
}


class CoverageStatus(StrEnum):
    RENEWED = "RENEWED"
    ACTIVE = "ACTIVE"
    EXPIRING_SOON = "EXPIRING_SOON"
    PENDING_START = "PENDING_START"
    LAPSED = "LAPSED"
    NO_RECORD = "NO_RECORD"

    @property
    def text_zh(self) -> str:
        """``status_text`` of §2.5's table."""
        return _TEXTS_ZH[self.value]

    @property
    def covered(self) -> bool:
        """Whether a liability at this instant would be paid: the police question."""
        return self in (CoverageStatus.RENEWED, CoverageStatus.ACTIVE, CoverageStatus.EXPIRING_SOON)

    @property
    def status_class(self) -> str:
        """Coarse class for bulk checks: a pending policy does not cover today either."""
        if self.covered:
            return "COVERED"
        return "NO_RECORD" if self is CoverageStatus.NO_RECORD else "NOT_COVERED"


def _require_aware(value: datetime, name: str) -> None:
    # A naive instant is ambiguous by eight hours in this domain; refuse rather than guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


@fast_init
@dataclass(frozen=True, slots=True)
class PolicyState:
    """One version of a policy: just what the status algorithm needs."""

    insurer_code: str
    policy_no: str
    version: int
    event_type: EventType
    coverage_start: datetime
    coverage_end: datetime
    effective_at: datetime | None = None

    def __post_init__(self) -> None:
        # One test for the common case; ``_require_aware`` names the culprit otherwise.
        if (
            self.coverage_start.tzinfo is None
            or self.coverage_end.tzinfo is None
            or (self.effective_at is not None and self.effective_at.tzinfo is None)
        ):
            _require_aware(self.coverage_start, "coverage_start")
            _require_aware(self.coverage_end, "coverage_end")
            if self.effective_at is not None:
                _require_aware(self.effective_at, "effective_at")

    @property
    def interval(self) -> tuple[datetime, datetime] | None:
        """The cover this policy really grants, or None.

        A cancel (注销) is void from inception; a surrender (退保) ends cover at
        ``effective_at``, and one effective before the start leaves nothing.
        """
        if self.event_type is EventType.CANCEL:
            return None
        end = self.coverage_end
        if self.event_type is EventType.SURRENDER and self.effective_at is not None:
            end = min(end, self.effective_at)
        return (self.coverage_start, end) if end > self.coverage_start else None


@fast_init
@dataclass(frozen=True, slots=True)
class Gap:
    """An uncovered stretch ``[start, end)`` in the look-back window."""

    start: datetime
    end: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class CoverageResult:
    at: datetime
    status: CoverageStatus
    covered_until: datetime | None
    current_policy: PolicyState | None
    next_policy: PolicyState | None
    days_to_expiry: int | None
    lapsed_since: datetime | None
    days_lapsed: int | None
    duplicate_coverage: bool
    gaps: tuple[Gap, ...]


def _rank(state: PolicyState) -> tuple[int, int, datetime, datetime, str, bool, datetime]:
    # The §2.4 rule decides (``state_rank``); the rest only breaks ties between two
    # different contents under one version (refused at intake, but the answer must still
    # not depend on order).
    cut = state.effective_at
    return (
        *state_rank(state.version, state.event_type),
        state.coverage_start,
        state.coverage_end,
        state.event_type.value,
        cut is not None,
        cut or state.coverage_start,
    )


def ruling_versions(states: Iterable[PolicyState]) -> list[PolicyState]:
    """Each policy at the version that rules it (§2.4: its lowest-versioned surrender or
    cancel, else its highest version), whatever order the versions arrived in."""
    return sorted(_ruling(states), key=lambda s: (s.coverage_start, s.insurer_code, s.policy_no))


def _ruling(states: Iterable[PolicyState]) -> Iterable[PolicyState]:
    if isinstance(states, tuple) and len(states) < 2:
        return states  # one version of one policy rules itself (a store's usual answer)
    best: dict[tuple[str, str], PolicyState] = {}
    for state in states:
        key = (state.insurer_code, state.policy_no)
        held = best.get(key)
        if held is None or _rank(state) > _rank(held):
            best[key] = state
    return best.values()


_Cover = tuple[datetime, datetime, PolicyState]


def covering_policies(policies: Iterable[PolicyState]) -> tuple[PolicyState, ...]:
    """Each policy at its ruling version that grants any cover, in the order the status
    algorithm reads them (by start, then end): a vehicle's cover history, as drawn on
    the owner's timeline. A cancel grants none; a surrender's cover ends at its
    ``effective_at`` (read it from :attr:`PolicyState.interval`)."""
    covers = [(i[0], i[1], s) for s in _ruling(policies) if (i := s.interval) is not None]
    covers.sort(key=_cover_order)
    return tuple(c[2] for c in covers)


def _cover_order(cover: _Cover) -> tuple[datetime, datetime, str, str]:
    return (cover[0], cover[1], cover[2].insurer_code, cover[2].policy_no)


def _earliest(covers: Iterable[_Cover]) -> _Cover | None:
    """The first policy to start; on a tie the one reaching furthest, then by key, so the
    pick never depends on input order."""
    return min(
        covers,
        key=lambda c: (c[0], -(c[1] - c[0]), c[2].insurer_code, c[2].policy_no),
        default=None,
    )


def _merge(covers: list[_Cover]) -> list[tuple[datetime, datetime]]:
    """Blocks of continuous cover; touching intervals join, since [a, b) + [b, c) = [a, c)."""
    blocks: list[tuple[datetime, datetime]] = []
    for start, end, _ in covers:  # sorted by start
        if blocks and start <= blocks[-1][1]:
            blocks[-1] = (blocks[-1][0], max(blocks[-1][1], end))
        else:
            blocks.append((start, end))
    return blocks


def _has_duplicate(covers: list[_Cover], at: datetime) -> bool:
    """重复投保: two insurers both covering some instant at or after ``at``.

    Overlap that is over by ``at`` is history, not something anyone can act on.
    """
    live = [c for c in covers if c[1] > at]
    for i, (s1, e1, p1) in enumerate(live):
        for s2, e2, p2 in live[i + 1 :]:
            if p1.insurer_code != p2.insurer_code and max(s1, s2, at) < min(e1, e2):
                return True
    return False


def _gaps(
    blocks: list[tuple[datetime, datetime]], at: datetime, lookback: timedelta
) -> tuple[Gap, ...]:
    """Uncovered stretches in the look-back window, never before the first ever cover:
    a vehicle was not uninsured before it was first insured (a new car did not exist)."""
    cursor = max(at - lookback, blocks[0][0])
    gaps: list[Gap] = []
    for start, end in blocks:
        if start >= at:
            break
        if start > cursor:
            gaps.append(Gap(cursor, start))
        cursor = max(cursor, end)
    if cursor < at:
        gaps.append(Gap(cursor, at))
    return tuple(gaps)


def covered_at(policies: Iterable[PolicyState], at: datetime) -> bool:
    """``coverage_status(policies, at).status.covered`` without the rest of the answer
    (a property test pins the two together): the daily match asks only this, of every
    registered vehicle, and the full status costs it several times as much."""
    _require_aware(at, "at")
    for state in _ruling(policies):
        interval = state.interval
        if interval is not None and interval[0] <= at < interval[1]:
            return True
    return False


@fast_init
@dataclass(frozen=True, slots=True)
class CoverageSummary:
    """The part of a :class:`CoverageResult` that a bulk verify item or a camera's check
    shows (DESIGN §3.1, §12): no gaps, no duplicate-cover flag, no day counts."""

    status: CoverageStatus
    covered_until: datetime | None
    current_policy: PolicyState | None
    lapsed_since: datetime | None


_NO_RECORD = CoverageSummary(CoverageStatus.NO_RECORD, None, None, None)
_PENDING = CoverageSummary(CoverageStatus.PENDING_START, None, None, None)


def coverage_summary(
    policies: Iterable[PolicyState],
    at: datetime,
    *,
    reminder_window: timedelta = timedelta(days=30),
) -> CoverageSummary:
    """``coverage_status(policies, at)`` cut to its :class:`CoverageSummary` (a property
    test pins the two together), without the look-back's gaps and the pairwise search
    for duplicate cover, which were most of its cost: a bulk verify of 10,000 plates asks
    this 10,000 times (docs/PERFORMANCE.md)."""
    _require_aware(at, "at")
    covers: list[_Cover] = []
    for state in _ruling(policies):
        interval = state.interval
        if interval is not None:
            covers.append((interval[0], interval[1], state))
    if not covers:
        return _NO_RECORD
    if len(covers) == 1:  # most vehicles: one cover, no renewal, one block
        start, end, state = covers[0]
        if start <= at < end:
            soon = end - at <= reminder_window
            status = CoverageStatus.EXPIRING_SOON if soon else CoverageStatus.ACTIVE
            return CoverageSummary(status, end, state, None)
        if end <= at:
            return CoverageSummary(CoverageStatus.LAPSED, None, None, end)
        return _PENDING
    covering = [c for c in covers if c[0] <= at < c[1]]
    if covering:
        covers.sort(key=_cover_order)
        covered_until = next(end for start, end in _merge(covers) if start <= at < end)
        _, cur_end, current = max(
            covering, key=lambda c: (c[1], c[0], c[2].insurer_code, c[2].policy_no)
        )
        if any(at < c[0] < covered_until and c[1] > cur_end for c in covers):
            status = CoverageStatus.RENEWED  # as coverage_status: a renewal exists
        elif covered_until - at > reminder_window:
            status = CoverageStatus.ACTIVE
        else:
            status = CoverageStatus.EXPIRING_SOON
        return CoverageSummary(status, covered_until, current, None)
    ended = [c[1] for c in covers if c[1] <= at]
    pending = any(c[0] > at for c in covers)
    return CoverageSummary(
        CoverageStatus.PENDING_START if pending else CoverageStatus.LAPSED,
        None,
        None,
        max(ended) if ended else None,
    )


def coverage_status(
    policies: Iterable[PolicyState],
    at: datetime,
    *,
    reminder_window: timedelta = timedelta(days=30),
    gap_lookback: timedelta = timedelta(days=365),
) -> CoverageResult:
    """The §2.5 status of one vehicle at ``at``, given its policies (any versions, any order)."""
    _require_aware(at, "at")
    covers: list[_Cover] = []
    for state in _ruling(policies):
        interval = state.interval
        if interval is not None:
            covers.append((interval[0], interval[1], state))
    # One policy per (insurer, number) by now: the key below never ties.
    covers.sort(key=_cover_order)
    if not covers:
        return CoverageResult(
            at, CoverageStatus.NO_RECORD, None, None, None, None, None, None, False, ()
        )

    blocks = _merge(covers)
    duplicate = _has_duplicate(covers, at)
    gaps = _gaps(blocks, at, gap_lookback)
    covering = [c for c in covers if c[0] <= at < c[1]]

    if covering:
        covered_until = next(end for start, end in blocks if start <= at < end)
        _, cur_end, current = max(
            covering, key=lambda c: (c[1], c[0], c[2].insurer_code, c[2].policy_no)
        )
        # The renewal is the first policy of this block that carries cover past the
        # current one. Current ends last of those covering ``at``, so any such policy
        # starts after ``at``, and one exists exactly when covered_until > cur_end.
        renewal = _earliest(c for c in covers if at < c[0] < covered_until and c[1] > cur_end)
        if renewal is not None:
            status = CoverageStatus.RENEWED
        elif covered_until - at > reminder_window:
            status = CoverageStatus.ACTIVE
        else:
            status = CoverageStatus.EXPIRING_SOON
        return CoverageResult(
            at=at,
            status=status,
            covered_until=covered_until,
            current_policy=current,
            next_policy=renewal[2] if renewal is not None else None,
            days_to_expiry=(covered_until - at) // _DAY,
            lapsed_since=None,
            days_lapsed=None,
            duplicate_coverage=duplicate,
            gaps=gaps,
        )

    # Not covered: every interval has either ended by ``at`` or starts after it.
    ended = [c[1] for c in covers if c[1] <= at]
    lapsed_since = max(ended) if ended else None
    first = _earliest(c for c in covers if c[0] > at)
    return CoverageResult(
        at=at,
        status=CoverageStatus.PENDING_START if first is not None else CoverageStatus.LAPSED,
        covered_until=None,
        current_policy=None,
        next_policy=first[2] if first is not None else None,
        days_to_expiry=None,
        lapsed_since=lapsed_since,
        days_lapsed=(at - lapsed_since) // _DAY if lapsed_since is not None else None,
        duplicate_coverage=duplicate,
        gaps=gaps,
    )
