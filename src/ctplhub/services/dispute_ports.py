"""The disputes' storage contract (DESIGN §10; ``services/disputes.py`` uses it,
``store/repositories/disputes.py`` implements it). One unit of work holds the dispute,
its history and the owner's notices in the reminder outbox, so a step and its notices
commit together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol

from ctplhub.services.reminder_ports import ReminderRepository


@dataclass(frozen=True, slots=True)
class NewDispute:
    vin: str
    plate: str  # canonical form, as the events keep it
    insurer_code: str
    policy_no: str
    kind: str
    message_enc: bytes
    token_hash: str
    opened_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class DisputeRow:
    id: int
    vin: str
    plate: str
    insurer_code: str
    policy_no: str
    kind: str
    message_enc: bytes
    status: str
    outcome: str | None
    token_hash: str
    opened_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryRow:
    at: datetime
    status: str
    note_enc: bytes | None


class DisputeRepository(Protocol):
    def add(self, new: NewDispute) -> int: ...
    def get(self, dispute_id: int) -> DisputeRow | None: ...
    def history(self, dispute_id: int) -> list[HistoryRow]:
        """Oldest first."""
        ...

    def add_history(
        self, dispute_id: int, at: datetime, status: str, note_enc: bytes | None
    ) -> None: ...

    def move(
        self,
        dispute_id: int,
        allowed: Sequence[str],
        status: str,
        at: datetime,
        outcome: str | None = None,
    ) -> bool:
        """Set ``status`` (and ``outcome``) when the dispute's status is one of
        ``allowed``, in one conditional UPDATE; False when it was not (a concurrent step
        won). The race-safe transition of both engines."""
        ...

    def listing(self, insurer_code: str | None, status: str, limit: int) -> list[DisputeRow]:
        """Disputes in ``status`` (of one insurer, or all), oldest first."""
        ...

    def overdue(self, at: datetime, limit: int) -> list[DisputeRow]:
        """Open disputes whose ``due_at`` has passed at ``at``, oldest due first; on
        PostgreSQL locked ``FOR UPDATE SKIP LOCKED`` so that two workers split them."""
        ...

    def subscriptions_of(self, vin: str, at: datetime) -> list[int]:
        """The vehicle's active subscriptions (made by ``at``), by id."""
        ...


class DisputeUnitOfWork(Protocol):
    """One transaction over the disputes and the reminder outbox; ``commit`` once."""

    disputes: DisputeRepository
    reminders: ReminderRepository

    def __enter__(self) -> DisputeUnitOfWork: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
