"""Use case: renewal reminders and cancellation alerts (DESIGN §7; issue 9).

- ``subscribe``: a verified owner (the verified query body of §3: a wrong factor is
  ``404 not_found`` exactly like an unknown plate) names a channel and an address; the
  address is sealed like owner fields and found again through a blind index, so the same
  address subscribed twice for a vehicle and channel is one subscription (made active
  again, with a new token).
- ``unsubscribe``: by id and token; a wrong token is the same ``404`` as an unknown id.
- ``decide(at)``: writes what is due at ``at`` into the outbox in the transaction that
  decides it. The outbox's unique key (policy, rule, subscription) makes a rerun write
  nothing twice. Quiet hours give a row a later first attempt (deferred, never dropped).
  A renewal that arrives after a row was queued cancels it when it is claimed
  (``Outbox.claim`` checks the vehicle's cover again), so no ingest hook is needed.
- ``ghost_covers``: surrenders and cancels within 30 days of issue, for regulators; the
  same closings alert the vehicle's subscriptions (``kind = "cancelled"``).

Insurer-given phones: events carry ``owner_phone`` but no consent flag (DESIGN §2.4
lists none), so reminders go only to explicit subscriptions (docs/DECISIONS.md).
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.errors import NotFound, ValidationFailed
from ctplhub.domain.policy import EventType
from ctplhub.domain.reminders import (
    GHOST_WINDOW,
    DueReminder,
    ReminderRules,
    as_ordinary,
    due_reminder,
    in_quiet_hours,
    is_ghost_cover,
    next_send_instant,
)
from ctplhub.services.check_coverage import CheckCoverage, CoverageQuery
from ctplhub.services.ports import AccessLog, Clock, PersonalData, Reader
from ctplhub.services.reminder_ports import (
    CHANNELS,
    KIND_CANCELLED,
    PENDING,
    SKIPPED,
    ExistingReminder,
    NewReminder,
    NewSubscription,
    ReminderKey,
    ReminderUnitOfWork,
)

SUBSCRIBE_PURPOSE = "reminder_subscription"
"""The access log's purpose of a subscription: the owner named the vehicle."""
GHOST_LOOKBACK = timedelta(days=7)
"""Closings received this long before a run still alert (a run missed for days)."""
MAX_GHOST_RANGE = timedelta(days=92)

_EMAIL = re.compile(
    r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_CN_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_NOT_FOUND = "no subscription with this id and token"
_RISK_CACHE_MAX = 2_000_000  # (vin, term) risks a process keeps; about 200 MB at most


class RiskRanking(Protocol):
    """The lapse forecast (``services/forecast.py``), as the reminders use it."""

    @property
    def top_decile(self) -> float: ...
    def risks(self, vins: Sequence[str], at: datetime) -> dict[str, float]: ...


class TokenMaker(Protocol):
    """Unsubscribe tokens (``security/unsubscribe.py``)."""

    def token(self, salt: bytes) -> str: ...
    def new_salt(self) -> bytes: ...
    def digest(self, token: str) -> str: ...


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """``POST /v1/subscriptions``: the verified query and where to remind."""

    query: CoverageQuery
    channel: object
    address: object
    language: object = None


@dataclass(frozen=True, slots=True)
class SubscriptionMade:
    subscription_id: int
    unsubscribe_token: str
    webhook_secret: str | None = None  # a webhook's signing secret, shown this once


@dataclass(frozen=True, slots=True)
class DecisionTally:
    """What ``decide(at)`` did: rows written (``queued`` pending, ``skipped`` older rules),
    ``due`` = pending rows due by ``at`` after deciding, ``deferred`` = those of them that
    cannot go at ``at`` (quiet hours: all of them; else those waiting for a retry)."""

    queued: int
    skipped: int
    alerts: int
    due: int
    deferred: int


@dataclass(frozen=True, slots=True)
class GhostCover:
    """A policy surrendered or cancelled within 30 days of its issue (for regulators)."""

    insurer_code: str
    policy_no: str
    event_type: str
    issued_at: datetime
    closed_at: datetime
    coverage_start: datetime
    covered_until: datetime
    days_after_issue: int


def address_aad(vin: str, channel: str) -> bytes:
    """Binds a sealed address to its vehicle and channel, so blobs cannot be swapped."""
    return f"subscriptions|{vin}|{channel}|address".encode()


def address_index_value(channel: str, address: str) -> str:
    """What an address's blind index is made of (and made again by a key rotation)."""
    return f"subscription|{channel}|{address}"


def normalise_address(channel: str, raw: object) -> str:
    """The address in one canonical form, or ``400 invalid_address`` saying why."""
    if not isinstance(raw, str):
        raise ValidationFailed(
            "address must be a string",
            code="invalid_address",
            details=[{"field": "address", "problem": "Input should be a valid string"}],
        )
    text = raw.strip()
    if channel == "email":
        if len(text) <= 254 and _EMAIL.fullmatch(text):
            # Lower-cased whole: mailboxes that differ only in case are one in practice,
            # and one address must be one subscription.
            return text.lower()
        problem = "an e-mail address such as owner@example.com"
    elif channel == "sms":
        compact = re.sub(r"[\s\-()]", "", text)
        mobile = _CN_MOBILE.fullmatch(compact)
        if mobile:
            return "+86" + mobile.group(1)
        if _E164.fullmatch(compact):
            return compact
        problem = "a mobile number: 11 digits starting with 1, or +country digits"
    else:
        parts = urlsplit(text)
        loopback = parts.hostname in _LOOPBACK
        if (
            len(text) <= 2048
            and parts.hostname
            and (parts.scheme == "https" or (parts.scheme == "http" and loopback))
            and not parts.username
            and not parts.password
        ):
            return text
        problem = "an https URL (http only to this machine), without credentials"
    raise ValidationFailed(
        f"address must be {problem}",
        code="invalid_address",
        details=[{"field": "address", "problem": problem}],
    )


def _language(raw: object) -> str:
    if raw is None:
        return "zh-CN"
    if isinstance(raw, str) and raw.strip().lower() in ("zh", "zh-cn", "zh-hans", "en"):
        return "en" if raw.strip().lower() == "en" else "zh-CN"
    raise ValidationFailed(
        'language must be "zh-CN" or "en"',
        details=[{"field": "language", "problem": "one of zh-CN, en"}],
    )


def _channel(raw: object) -> str:
    if isinstance(raw, str) and raw in CHANNELS:
        return raw
    raise ValidationFailed(
        'channel must be "email", "sms" or "webhook"',
        details=[{"field": "channel", "problem": "one of email, sms, webhook"}],
    )


def _state(head: tuple[str, str, str, datetime, datetime, datetime | None]) -> PolicyState:
    code, pno, kind, start, end, cut = head
    # The head row is the version that rules (its number does not matter here).
    return PolicyState(code, pno, 1, EventType(kind), start, end, cut)


class Reminders:
    def __init__(
        self,
        uow: Callable[[], ReminderUnitOfWork],
        coverage: CheckCoverage,
        personal: PersonalData,
        tokens: TokenMaker,
        clock: Clock,
        *,
        access_log: AccessLog,
        rules: ReminderRules = ReminderRules(),
        webhook_secret: Callable[[int], str] | None = None,
        risk: RiskRanking | None = None,
    ) -> None:
        self._uow = uow
        self._coverage = coverage
        self._personal = personal
        self._tokens = tokens
        self._clock = clock
        self._access_log = access_log
        self.rules = rules
        self._webhook_secret = webhook_secret
        self._risk = risk
        self._risk_cache: dict[tuple[str, datetime], float] = {}

    def now(self) -> datetime:
        return self._clock()

    # --- subscriptions ---

    async def subscribe(self, request: SubscriptionRequest, reader: Reader) -> SubscriptionMade:
        """A subscription for the vehicle a verified query names (no ``at``: it is about
        now); the read is access-logged as ``reader``."""
        channel = _channel(request.channel)
        address = normalise_address(channel, request.address)
        language = _language(request.language)
        if request.query.at is not None:
            raise ValidationFailed(
                "a subscription is about the vehicle now: at is not accepted",
                details=[{"field": "at", "problem": "Extra inputs are not permitted"}],
            )
        vehicle = await self._coverage.verified_vehicle(request.query)
        now = self._clock()
        self._access_log.record(reader, vehicle.vin, now)
        return await asyncio.to_thread(
            self._subscribe, vehicle.vin, channel, address, language, now
        )

    def _subscribe(
        self, vin: str, channel: str, address: str, language: str, now: datetime
    ) -> SubscriptionMade:
        salt = self._tokens.new_salt()
        token = self._tokens.token(salt)
        digest = self._tokens.digest(token)
        indexed = address_index_value(channel, address)
        with self._uow() as uow:
            same = next(
                (
                    row
                    for row in uow.subscriptions.of_vehicle(vin)
                    if row.channel == channel
                    and self._personal.blind_index_matches(row.address_bidx, indexed)
                ),
                None,
            )
            if same is not None:
                uow.subscriptions.renew(same.id, language, salt, digest)
                subscription_id = same.id
            else:
                subscription_id = uow.subscriptions.add(
                    NewSubscription(
                        vin=vin,
                        channel=channel,
                        address_enc=self._personal.encrypt(address, aad=address_aad(vin, channel)),
                        address_bidx=self._personal.blind_index(indexed),
                        language=language,
                        token_salt=salt,
                        token_hash=digest,
                        source="owner",
                        created_at=now,
                    )
                )
            uow.commit()
        secret = None
        if channel == "webhook" and self._webhook_secret is not None:
            secret = self._webhook_secret(subscription_id)
        return SubscriptionMade(subscription_id, token, secret)

    def unsubscribe(self, subscription_id: object, token: object) -> None:
        """End a subscription and cancel what it has queued; ending an ended one again is
        a no-op. An unknown id and a wrong token are the same ``404 not_found``."""
        if not isinstance(token, str) or not token or len(token) > 128:
            raise NotFound(_NOT_FOUND)
        if not isinstance(subscription_id, int) or not 0 < subscription_id < 2**62:
            raise NotFound(_NOT_FOUND)
        now = self._clock()
        with self._uow() as uow:
            row = uow.subscriptions.get(subscription_id)
            given = self._tokens.digest(token)
            if row is None or not hmac.compare_digest(row.token_hash, given):
                raise NotFound(_NOT_FOUND)
            if row.ended_at is None:
                uow.subscriptions.end(subscription_id, now)
                uow.reminders.cancel_pending_of(subscription_id, now)
                uow.commit()

    # --- decisions ---

    def decide(self, at: datetime) -> DecisionTally:
        """Write the reminders and alerts due at ``at``; one transaction.

        With the lapse forecast wired, rows are written riskiest vehicle first (so rows
        due at one instant are claimed in that order: ``Outbox.claim`` takes them by due
        time, then id) and the riskiest tenth also get the early rule."""
        rules = self.rules
        send_at = next_send_instant(at, rules)
        ahead = rules.look_ahead_early if self._risk is not None else rules.look_ahead
        with self._uow() as uow:
            repo = uow.reminders
            near = repo.near_end(at - rules.look_back, at + ahead, at)
            by_vin: dict[str, list[int]] = {}
            for sub in near.subscribers:
                by_vin.setdefault(sub.vin, []).append(sub.subscription_id)
            heads, existing = near.heads, near.existing
            pending: list[NewReminder] = []
            skipped: list[NewReminder] = []
            overtaken: list[int] = []
            # What each vehicle is due as a risky one: its rules include every rule of the
            # others, so a vehicle with nothing due this way has nothing due at all, and an
            # ordinary vehicle's answer follows from it (``as_ordinary``).
            forecast = self._risk is not None
            due_of: dict[str, DueReminder] = {}
            for vin in by_vin:
                found = due_reminder(
                    [_state(h) for h in heads.get(vin, ())], at, rules, high_risk=forecast
                )
                if found is not None:
                    due_of[vin] = found
            order = list(due_of)
            risky: set[str] = set()
            if self._risk is not None and due_of:
                risks = self._risks_that_matter(due_of, by_vin, existing, at)
                top = self._risk.top_decile
                risky = {vin for vin, risk in risks.items() if risk >= top}
                order.sort(key=lambda vin: (-risks.get(vin, 0.0), vin))
            for vin in order:
                subscription_ids = by_vin[vin]
                due: DueReminder | None = due_of[vin]
                if forecast and vin not in risky:
                    due = as_ordinary(due, rules)
                if due is None:
                    continue
                policy = due.policy
                for sid in subscription_ids:
                    key: ReminderKey = (policy.insurer_code, policy.policy_no, due.rule.kind, sid)
                    if key not in existing:
                        pending.append(
                            NewReminder(
                                sid,
                                key[0],
                                key[1],
                                key[2],
                                vin,
                                due.reference,
                                PENDING,
                                due.due_at,
                                max(send_at, due.due_at),
                            )
                        )
                    for older in due.older:
                        okey = (policy.insurer_code, policy.policy_no, older.kind, sid)
                        held: ExistingReminder | None = existing.get(okey)
                        if held is None:
                            skipped.append(
                                NewReminder(
                                    sid,
                                    okey[0],
                                    okey[1],
                                    okey[2],
                                    vin,
                                    due.reference,
                                    SKIPPED,
                                    due.reference + older.offset,
                                    at,
                                )
                            )
                        elif held.state == PENDING:
                            overtaken.append(held.id)
            alerts = [
                NewReminder(
                    sid,
                    closed.insurer_code,
                    closed.policy_no,
                    KIND_CANCELLED,
                    closed.vin,
                    closed.covered_until,
                    PENDING,
                    at,
                    send_at,
                )
                for closed, sid in repo.closed_near(at - GHOST_LOOKBACK, at, at)
                if is_ghost_cover(closed.issued_at, closed.closed_at)
            ]
            queued = repo.add_many(pending)
            alerted = repo.add_many(alerts)
            written_skips = repo.add_many(skipped)
            repo.set_state(overtaken, SKIPPED, at)
            due_now, waiting = repo.count_pending_due(at)
            uow.commit()
        return DecisionTally(
            queued=queued,
            skipped=written_skips + len(overtaken),
            alerts=alerted,
            due=due_now,
            deferred=due_now if in_quiet_hours(at, rules) else waiting,
        )

    def _risks_that_matter(
        self,
        due_of: Mapping[str, DueReminder],
        by_vin: Mapping[str, list[int]],
        existing: Mapping[ReminderKey, Any],
        at: datetime,
    ) -> dict[str, float]:
        """The risks of the vehicles whose pass they can change: those with a reminder to
        write (written riskiest first) and those the early rule would reach but has not.
        A vehicle's risk is kept for its term (its latest cover end) in this process, so
        a worker's minute passes score each vehicle once a term, not every minute (every
        pass once read the history of every subscriber near an end: 2.7 s at 1M, §13)."""
        assert self._risk is not None
        wanted: dict[str, datetime] = {}
        for vin, due in due_of.items():
            policy = due.policy
            new = any(
                (policy.insurer_code, policy.policy_no, due.rule.kind, sid) not in existing
                for sid in by_vin[vin]
            )
            if new:
                wanted[vin] = due.reference
        unknown = [vin for vin, end in wanted.items() if (vin, end) not in self._risk_cache]
        if unknown:
            for vin, risk in self._risk.risks(sorted(unknown), at).items():
                self._risk_cache[(vin, wanted[vin])] = risk
            if len(self._risk_cache) > _RISK_CACHE_MAX:  # a long-running worker: start over
                self._risk_cache.clear()
        return {
            vin: self._risk_cache[(vin, end)]
            for vin, end in wanted.items()
            if (vin, end) in self._risk_cache
        }

    # --- regulators ---

    def ghost_covers(
        self,
        since: datetime,
        until: datetime,
        *,
        insurer_code: str | None = None,
        limit: int = 1000,
    ) -> list[GhostCover]:
        """Closings that occurred in ``[since, until)`` within 30 days of issue, oldest
        first; the range is at most 92 days (``400 range_too_large``)."""
        if until <= since:
            raise ValidationFailed(
                "to must be after from", details=[{"field": "to", "problem": "not after from"}]
            )
        if until - since > MAX_GHOST_RANGE:
            raise ValidationFailed(
                "the range is at most 92 days", code="range_too_large", details={"max_days": 92}
            )
        found: list[GhostCover] = []
        with self._uow() as uow:
            closed = uow.reminders.closed_between(since, until, insurer_code, 100_000)
        for c in closed:
            if is_ghost_cover(c.issued_at, c.closed_at, GHOST_WINDOW):
                found.append(
                    GhostCover(
                        c.insurer_code,
                        c.policy_no,
                        c.event_type,
                        c.issued_at,
                        c.closed_at,
                        c.coverage_start,
                        c.covered_until,
                        (c.closed_at - c.issued_at).days,
                    )
                )
                if len(found) >= limit:
                    break
        return found


def parse_ids(values: Sequence[str]) -> list[int]:
    """Outbox ids given on a command line."""
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValidationFailed("ids are whole numbers") from None
