"""The reminder outbox contract (DESIGN §7): what the deciding side writes and the
delivering side (``ctplhub.notify``) reads. docs/reminders-contract.md explains it.

The outbox is transactional: ``decide`` writes a row in the same transaction that decides
it, and a row is sent only through ``Outbox``: ``claim`` leases due rows to one worker
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: its single writer), the worker sends and
then calls ``mark_sent`` / ``mark_failed`` / ``defer``. A worker that dies keeps its claims
only until its lease ends; then they are due again. Every ``Outbox`` method is its own
short transaction (it commits), unlike repositories inside a unit of work.

Every instant is the run's clock (``at``), never the wall clock (DESIGN §7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Final, Protocol

CHANNELS: Final = ("email", "sms", "webhook")
LANGUAGES: Final = ("zh-CN", "en")

# Outbox row states. ``pending`` rows are sent; the others are final except ``dead``,
# which an operator may re-drive back to ``pending``.
PENDING: Final = "pending"
SENT: Final = "sent"
SKIPPED: Final = "skipped"  # an older rule overtaken by a more urgent one (never sent)
CANCELLED: Final = "cancelled"  # renewed, or unsubscribed, before it was sent
DEAD: Final = "dead"  # gave up after the last retry; see ``dead_letters`` / ``redrive``
STATES: Final = (PENDING, SENT, SKIPPED, CANCELLED, DEAD)

# ``OutboxMessage.kind``: ``before_<n>d`` (n days before covered_until),
# ``lapsed_<n>d`` (n days after a lapse), ``early_risk_<n>d`` (n days before, for the
# lapse forecast's riskiest tenth: docs/forecast.md) and ``cancelled`` (ghost-cover alert).
KIND_CANCELLED: Final = "cancelled"
# A dispute's notices to the owner's subscription (DESIGN §10; services/disputes.py):
# filed, resolved by the insurer, escalated to the regulator.
KIND_DISPUTE_OPENED: Final = "dispute_opened"
KIND_DISPUTE_RESOLVED: Final = "dispute_resolved"
KIND_DISPUTE_ESCALATED: Final = "dispute_escalated"
DISPUTE_KINDS: Final = (KIND_DISPUTE_OPENED, KIND_DISPUTE_RESOLVED, KIND_DISPUTE_ESCALATED)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One claimed message with everything a template needs; nothing to look up.

    ``address`` is plaintext (decrypted by the store for this send only): never log it.
    ``covered_until`` is the end of cover for ``before_*`` / ``lapsed_*`` (the lapse
    instant for ``lapsed_*``), and for ``cancelled`` the instant the cancelled or
    surrendered policy stopped covering, and for a dispute's notices (``dispute_*``) the
    dispute's ``due_at``. ``attempts`` counts this try (1 on the first).
    ``id`` is stable across retries: use it as the idempotency key (webhook header).
    """

    id: int
    subscription_id: int
    channel: str  # one of CHANNELS
    address: str  # e-mail address, phone number (E.164-ish digits) or https URL
    language: str  # one of LANGUAGES
    kind: str  # "before_30d" | "before_7d" | "before_1d" | "lapsed_1d" | "cancelled" | ...
    rule_days: int  # n of before_<n>d / lapsed_<n>d; 0 for "cancelled"
    plate: str  # display form, "苏E·12345"
    vin_masked: str  # "LSVAU2180N2******"
    insurer_code: str
    insurer_name: str
    policy_no_masked: str  # "…1234"
    covered_until: datetime  # aware, UTC; render in Asia/Shanghai
    unsubscribe_token: str
    unsubscribe_url: str  # absolute: {public_url}/v1/subscriptions/{id}/unsubscribe?token=..
    attempts: int
    due_at: datetime
    dispute_id: int | None = None  # a dispute's notices only
    dispute_outcome: str | None = None  # "corrected" | "rejected" once resolved


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that ran out of retries, as an operator sees it (address masked)."""

    id: int
    channel: str
    address_masked: str
    kind: str
    plate: str
    attempts: int
    last_error: str | None  # a short code, never personal data
    due_at: datetime
    failed_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Rows per state; ``due`` = pending rows whose next attempt is at or before ``at``."""

    pending: int
    due: int
    sent: int
    skipped: int
    cancelled: int
    dead: int


class Outbox(Protocol):
    """The delivering side's view of the ``reminders`` table. Each call commits."""

    def claim(
        self, at: datetime, limit: int, worker_id: str, lease: timedelta
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` pending rows due at ``at`` (next attempt ≤ ``at``, no live
        lease) to ``worker_id`` until ``at + lease``, oldest due first, and count the try
        (``attempts`` + 1). Two concurrent claimers never get the same row. Nothing is
        claimed while ``at`` is in quiet hours (21:00-08:00 Beijing): quiet hours defer,
        so a retry falling into them simply waits for 08:00. A row whose subscription
        ended since it was queued is cancelled here instead of returned."""
        ...

    def mark_sent(self, message_id: int, at: datetime) -> None:
        """The channel acknowledged it: ``sent``, never claimed again."""
        ...

    def mark_sent_many(self, message_ids: Sequence[int], at: datetime) -> None:
        """``mark_sent`` of several in one transaction: a worker records together what its
        channels acknowledged while its last commit was under way (group commit)."""
        ...

    def mark_failed(
        self, message_id: int, at: datetime, error_code: str, next_attempt_at: datetime | None
    ) -> None:
        """This try failed with ``error_code`` (short snake_case, no personal data); retry
        at ``next_attempt_at``, or, when it is None, the row becomes a dead letter."""
        ...

    def defer(self, message_id: int, until: datetime) -> None:
        """Give a claimed row back without counting the try (shutdown, throttling)."""
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def redrive(self, ids: Sequence[int] | None, at: datetime) -> int:
        """Dead letters ``ids`` (all when None) become pending, due at ``at``, with
        ``attempts`` reset to 0; returns how many."""
        ...

    def counts(self, at: datetime) -> OutboxCounts: ...


@dataclass(frozen=True, slots=True)
class DeliveryTally:
    """What one delivery pass did (``ctplhub.notify`` returns it)."""

    sent: int
    failed: int  # tries that failed this pass (retried later or dead-lettered)
    deferred: int  # claimed but given back (``Outbox.defer``)
    dead_lettered: int


class DeliverDue(Protocol):
    """One delivery pass at ``at``: claim what is due, send it, record each outcome;
    ``ctplhub remind run`` calls it after deciding. Provided by ``ctplhub.notify``."""

    def __call__(self, at: datetime) -> DeliveryTally: ...


# --- The deciding side's ports (services/reminders.py; store/repositories/*). ---


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """A subscription as the service sees it: the address only as its blind index."""

    id: int
    vin: str
    channel: str
    address_bidx: bytes
    language: str
    token_hash: str
    source: str
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewSubscription:
    vin: str
    channel: str
    address_enc: bytes
    address_bidx: bytes
    language: str
    token_salt: bytes
    token_hash: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An active subscription of a vehicle that may be due a reminder."""

    subscription_id: int
    vin: str
    created_at: datetime


PolicyHeadRow = tuple[str, str, str, datetime, datetime, "datetime | None"]
"""A vehicle's policy head for the rules: (insurer, policy_no, event_type, start, end,
cut)."""


@dataclass(frozen=True, slots=True)
class NearEnd:
    """What ``decide`` reads: who may be due, their vehicles' policies, what is queued."""

    subscribers: list[Subscriber]
    heads: dict[str, list[PolicyHeadRow]]  # by VIN
    existing: dict[ReminderKey, ExistingReminder]


@dataclass(frozen=True, slots=True)
class ExistingReminder:
    id: int
    state: str


ReminderKey = tuple[str, str, str, int]
"""(insurer_code, policy_no, rule, subscription_id): a policy reminder's unique key (the
outbox's key also holds ``dispute_id``, always 0 for them)."""


@dataclass(frozen=True, slots=True)
class NewReminder:
    subscription_id: int
    insurer_code: str
    policy_no: str
    rule: str
    vin: str
    covered_until: datetime
    state: str
    due_at: datetime
    next_attempt_at: datetime
    dispute_id: int = 0  # the dispute a ``dispute_*`` notice tells of; 0 otherwise


@dataclass(frozen=True, slots=True)
class ClosedPolicy:
    """A surrendered or cancelled policy: when it was issued (its first event) and
    closed (the closing event, both insurer instants), and until when it covered."""

    insurer_code: str
    policy_no: str
    vin: str
    event_type: str
    issued_at: datetime
    closed_at: datetime
    coverage_start: datetime
    covered_until: datetime  # the cut: effective_at for a surrender, coverage_start for a cancel


class SubscriptionRepository(Protocol):
    def of_vehicle(self, vin: str) -> list[SubscriptionRow]: ...
    def get(self, subscription_id: int) -> SubscriptionRow | None: ...
    def add(self, new: NewSubscription) -> int: ...
    def renew(
        self, subscription_id: int, language: str, token_salt: bytes, token_hash: str
    ) -> None:
        """An address subscribed again: active again, a new token, the language given."""
        ...

    def end(self, subscription_id: int, at: datetime) -> None: ...


class ReminderRepository(Protocol):
    def near_end(self, since: datetime, until: datetime, at: datetime) -> NearEnd:
        """Active subscriptions (made by ``at``) of vehicles with a policy whose cover
        ends in ``[since, until]`` (every vehicle that can be due a reminder), with those
        vehicles' policy heads and the outbox rows those subscriptions already have."""
        ...

    def add_many(self, rows: Sequence[NewReminder]) -> int:
        """Insert the rows whose key is new (a concurrent decider's rows are kept);
        returns how many were inserted."""
        ...

    def set_state(self, ids: Sequence[int], state: str, at: datetime) -> None:
        """Pending rows among ``ids`` move to ``state`` (skipped or cancelled)."""
        ...

    def count_pending_due(self, at: datetime) -> tuple[int, int]:
        """Pending rows whose rule was due by ``at``, and how many of them wait for a
        later attempt (quiet hours, back-off)."""
        ...

    def cancel_pending_of(self, subscription_id: int, at: datetime) -> int: ...
    def closed_near(
        self, since: datetime, until: datetime, at: datetime
    ) -> list[tuple[ClosedPolicy, int]]:
        """Policies closed (closing event received) in ``[since, until]`` on vehicles with
        active subscriptions, each with one subscription id per subscription."""
        ...

    def closed_between(
        self, since: datetime, until: datetime, insurer_code: str | None, limit: int
    ) -> list[ClosedPolicy]:
        """Policies whose closing event occurred in ``[since, until)``, oldest first."""
        ...


class ReminderUnitOfWork(Protocol):
    """One transaction over subscriptions and the outbox; ``commit`` once."""

    subscriptions: SubscriptionRepository
    reminders: ReminderRepository

    def __enter__(self) -> ReminderUnitOfWork: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
