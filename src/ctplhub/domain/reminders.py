"""Reminder rules (DESIGN §7): which reminder a vehicle is due at an instant, quiet hours,
and ghost cover. Pure functions of (policies, instant, rules): no clock, no storage.

- Rules remind ``n`` days before ``covered_until`` (default 30, 7, 1) and ``n`` days after
  a lapse (default 1). A rule is due from ``reference ± n days`` on; when several are due
  at once only the most urgent (the latest due) is sent and the older ones are skipped.
- Nothing once the vehicle is renewed: a reminder is due only when no policy of the
  vehicle grants cover ending after the one reminded of (a renewal with a gap counts: the
  owner has acted; the answer's ``gaps`` tell the rest).
- A ``before`` rule is due only while still covered; a ``lapsed`` rule only while no
  cover came back and for ``lapse_grace`` after its due time (a subscription made a year
  after a lapse is not told "your cover lapsed yesterday").
- The early reminder (issue 12 item 6): ``early_risk_<n>d``, ``n`` (default 45) days
  before ``covered_until``, only for a vehicle the lapse forecast puts in its riskiest
  tenth (``high_risk``); otherwise it is a ``before`` rule like the others.
- Quiet hours, 21:00 (inclusive) to 08:00 (exclusive) Beijing time, defer a send to the
  next 08:00; they never drop it.
- Ghost cover: a surrender or cancel within 30 days of the policy's issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache

from ctplhub.domain.coverage import PolicyState, ruling_versions
from ctplhub.domain.instants import BEIJING

_DAY = timedelta(days=1)

GHOST_WINDOW = timedelta(days=30)
EARLY_RISK_DAYS = 45


@dataclass(frozen=True, slots=True)
class Rule:
    """``before_<n>d`` (``days_after`` = -n) or ``lapsed_<n>d`` (+n)."""

    kind: str
    days: int
    lapse: bool

    @property
    def offset(self) -> timedelta:
        return timedelta(days=self.days if self.lapse else -self.days)


def before(days: int) -> Rule:
    return Rule(f"before_{days}d", days, False)


def lapsed(days: int) -> Rule:
    return Rule(f"lapsed_{days}d", days, True)


def early_risk(days: int) -> Rule:
    return Rule(f"early_risk_{days}d", days, False)


@dataclass(frozen=True, slots=True)
class ReminderRules:
    """The configurable part: days before the end, days after a lapse, quiet hours."""

    days_before: tuple[int, ...] = (30, 7, 1)
    days_after_lapse: tuple[int, ...] = (1,)
    lapse_grace: timedelta = timedelta(days=7)
    quiet_from: time = time(21, 0)
    quiet_until: time = time(8, 0)
    early_risk_days: int = EARLY_RISK_DAYS

    def __post_init__(self) -> None:
        for n in (*self.days_before, *self.days_after_lapse, self.early_risk_days):
            if not 0 < n <= 365:
                raise ValueError(f"reminder days must be 1-365, not {n}")
        if not self.days_before and not self.days_after_lapse:
            raise ValueError("at least one reminder rule is needed")

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule, least urgent first (the order their due times come in)."""
        return _rules_of(self.days_before, self.days_after_lapse)

    @property
    def look_ahead(self) -> timedelta:
        """How far after ``at`` a reminded end can lie (the earliest ``before`` rule)."""
        return timedelta(days=max(self.days_before, default=0))

    @property
    def early_rule(self) -> Rule:
        return _early_rule(self.early_risk_days)

    @property
    def look_ahead_early(self) -> timedelta:
        """:attr:`look_ahead` when the early reminder is on (high-risk vehicles)."""
        return max(self.look_ahead, timedelta(days=self.early_risk_days))

    @property
    def look_back(self) -> timedelta:
        """How far before ``at`` a lapse can lie and still be reminded of."""
        return timedelta(days=max(self.days_after_lapse, default=0)) + self.lapse_grace

    def rule(self, kind: str) -> Rule | None:
        return next((r for r in self.rules if r.kind == kind), None)


@cache
def _rules_of(days_before: tuple[int, ...], days_after_lapse: tuple[int, ...]) -> tuple[Rule, ...]:
    # Made once per configuration: a pass asks for them once per vehicle near an end.
    befores = [before(n) for n in sorted(set(days_before), reverse=True)]
    return (*befores, *(lapsed(n) for n in sorted(set(days_after_lapse))))


@cache
def _early_rule(days: int) -> Rule:
    return early_risk(days)


@dataclass(frozen=True, slots=True)
class DueReminder:
    """The most urgent rule due for one vehicle, the policy it is about, and the older
    rules due with it (to be skipped)."""

    rule: Rule
    policy: PolicyState  # the policy whose end is ``reference``
    reference: datetime  # covered_until (before rules) or the lapse instant (lapsed rules)
    due_at: datetime
    older: tuple[Rule, ...]


def _ends(policies: Iterable[PolicyState]) -> list[tuple[datetime, datetime, PolicyState]]:
    covers = []
    for state in ruling_versions(policies):
        interval = state.interval
        if interval is not None:
            covers.append((interval[0], interval[1], state))
    return covers


def due_reminder(
    policies: Iterable[PolicyState],
    at: datetime,
    rules: ReminderRules,
    *,
    high_risk: bool = False,
) -> DueReminder | None:
    """The reminder due for a vehicle with ``policies`` at ``at``, or None; a
    ``high_risk`` vehicle has the early rule too."""
    covers = _ends(policies)
    if not covers:
        return None
    last_end = max(end for _, end, _ in covers)
    covering = [c for c in covers if c[0] <= at < c[1]]
    if covering:
        # The end of the block of cover containing ``at``; a renewal (anything ending
        # later, with or without a gap) means nothing is due.
        reference = _block_end(covers, at)
        if reference < last_end:
            return None
        candidates = [r for r in rules.rules if not r.lapse]
        if high_risk:
            candidates.insert(0, rules.early_rule)
    else:
        if any(start > at for start, _, _ in covers):
            return None  # a policy is yet to start: renewed (PENDING_START)
        reference = last_end
        candidates = [
            r for r in rules.rules if r.lapse and at < reference + r.offset + rules.lapse_grace
        ]
    due = [r for r in candidates if reference + r.offset <= at]
    if not due:
        return None
    early = rules.early_rule.kind  # on a tie the ordinary rule is the one sent
    urgent = max(due, key=lambda r: (reference + r.offset, r.lapse, r.kind != early))
    older = tuple(r for r in due if r is not urgent)
    policy = max(
        (c for c in covers if c[1] == reference),
        key=lambda c: (c[0], c[2].insurer_code, c[2].policy_no),
    )[2]
    return DueReminder(urgent, policy, reference, reference + urgent.offset, older)


def as_ordinary(due: DueReminder | None, rules: ReminderRules) -> DueReminder | None:
    """The reminder due for a vehicle that is not high-risk, from the one due for it as a
    high-risk vehicle (``due_reminder(..., high_risk=True)``): the same rules less the
    early one. So a vehicle's policies are read once for both answers; a property test
    holds the two ways equal."""
    if due is None:
        return None
    early = rules.early_rule
    if due.rule != early:
        if early not in due.older:
            return due
        older = tuple(r for r in due.older if r != early)
        return DueReminder(due.rule, due.policy, due.reference, due.due_at, older)
    if not due.older:
        return None  # only the early rule was due: nothing for an ordinary vehicle
    reference = due.reference
    urgent = max(due.older, key=lambda r: (reference + r.offset, r.lapse))
    older = tuple(r for r in due.older if r is not urgent)
    return DueReminder(urgent, due.policy, reference, reference + urgent.offset, older)


def _block_end(covers: Sequence[tuple[datetime, datetime, PolicyState]], at: datetime) -> datetime:
    """The end of the continuous cover containing ``at`` (touching intervals join)."""
    end = at
    for start, stop, _ in sorted(covers, key=lambda c: c[0]):
        if start <= end and stop > end:
            end = stop
    return end


def renewed_after(policies: Iterable[PolicyState], reference: datetime) -> bool:
    """Whether some policy grants cover ending after ``reference``: a reminder about the
    end (or lapse) at ``reference`` is then stale and is cancelled, not sent."""
    return any(end > reference for _, end, _ in _ends(policies))


def in_quiet_hours(at: datetime, rules: ReminderRules = ReminderRules()) -> bool:
    local = at.astimezone(BEIJING).time()
    if rules.quiet_from > rules.quiet_until:  # the window spans midnight
        return local >= rules.quiet_from or local < rules.quiet_until
    return rules.quiet_from <= local < rules.quiet_until


def next_send_instant(at: datetime, rules: ReminderRules = ReminderRules()) -> datetime:
    """``at`` itself outside quiet hours, else the quiet hours' next end (08:00 Beijing)."""
    if not in_quiet_hours(at, rules):
        return at
    local = at.astimezone(BEIJING)
    end = local.replace(
        hour=rules.quiet_until.hour,
        minute=rules.quiet_until.minute,
        second=0,
        microsecond=0,
    )
    if end <= local:
        end += _DAY
    return end


def is_ghost_cover(
    issued_at: datetime, closed_at: datetime, window: timedelta = GHOST_WINDOW
) -> bool:
    """A surrender or cancel at ``closed_at`` within ``window`` of the issue at
    ``issued_at``: possible buy-then-cancel ("ghost") cover."""
    return timedelta(0) <= closed_at - issued_at <= window
