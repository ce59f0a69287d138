"""Disputes and their history (DESIGN §10; ``services/dispute_ports.py``), and the unit of
work that writes a dispute's step together with the owner's notices in the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from ctplhub.services.dispute_ports import (
    DisputeRepository,
    DisputeRow,
    HistoryRow,
    NewDispute,
)
from ctplhub.services.reminder_ports import ReminderRepository
from ctplhub.store.repositories.reminders import SqlReminderRepository
from ctplhub.store.tables import dispute_history, disputes, subscriptions
from ctplhub.store.unit_of_work import SqlTransaction

_d = disputes.c
_h = dispute_history.c
_s = subscriptions.c
_COLUMNS = (
    _d.id,
    _d.vin,
    _d.plate,
    _d.insurer_code,
    _d.policy_no,
    _d.kind,
    _d.message_enc,
    _d.status,
    _d.outcome,
    _d.token_hash,
    _d.opened_at,
    _d.due_at,
)


def _row(row: Any) -> DisputeRow:
    values = list(row)
    values[6] = bytes(values[6])  # psycopg gives memoryview
    return DisputeRow(*values)


class SqlDisputeRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, new: NewDispute) -> int:
        result = self._conn.execute(
            insert(disputes).returning(_d.id),
            {
                "vin": new.vin,
                "plate": new.plate,
                "insurer_code": new.insurer_code,
                "policy_no": new.policy_no,
                "kind": new.kind,
                "message_enc": new.message_enc,
                "status": "open",
                "outcome": None,
                "token_hash": new.token_hash,
                "opened_at": new.opened_at,
                "due_at": new.due_at,
                "updated_at": new.opened_at,
            },
        )
        return int(result.scalar_one())

    def get(self, dispute_id: int) -> DisputeRow | None:
        row = self._conn.execute(select(*_COLUMNS).where(_d.id == dispute_id)).first()
        return _row(row) if row is not None else None

    def history(self, dispute_id: int) -> list[HistoryRow]:
        rows = self._conn.execute(
            select(_h.at, _h.status, _h.note_enc)
            .where(_h.dispute_id == dispute_id)
            .order_by(_h.id)  # the order the steps were taken in
        )
        return [HistoryRow(at, status, None if n is None else bytes(n)) for at, status, n in rows]

    def add_history(
        self, dispute_id: int, at: datetime, status: str, note_enc: bytes | None
    ) -> None:
        self._conn.execute(
            insert(dispute_history),
            {"dispute_id": dispute_id, "at": at, "status": status, "note_enc": note_enc},
        )

    def move(
        self,
        dispute_id: int,
        allowed: Sequence[str],
        status: str,
        at: datetime,
        outcome: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if outcome is not None:
            values["outcome"] = outcome
        result = self._conn.execute(
            update(disputes).where(_d.id == dispute_id, _d.status.in_(list(allowed))).values(values)
        )
        return result.rowcount == 1

    def listing(self, insurer_code: str | None, status: str, limit: int) -> list[DisputeRow]:
        query = select(*_COLUMNS).where(_d.status == status)
        if insurer_code is not None:
            query = query.where(_d.insurer_code == insurer_code)
        return [_row(r) for r in self._conn.execute(query.order_by(_d.id).limit(limit))]

    def overdue(self, at: datetime, limit: int) -> list[DisputeRow]:
        query = (
            select(*_COLUMNS)
            .where(_d.status == "open", _d.due_at <= at)
            .order_by(_d.due_at, _d.id)
            .limit(limit)
        )
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [_row(r) for r in self._conn.execute(query)]

    def subscriptions_of(self, vin: str, at: datetime) -> list[int]:
        live = and_(_s.vin == vin, _s.ended_at.is_(None), _s.created_at <= at)
        return list(self._conn.execute(select(_s.id).where(live).order_by(_s.id)).scalars())


class SqlDisputeUnitOfWork(SqlTransaction):
    """Disputes and the reminder outbox in one transaction (``DisputeUnitOfWork``)."""

    disputes: DisputeRepository
    reminders: ReminderRepository

    def _bind(self, conn: Connection) -> None:
        self.disputes = SqlDisputeRepository(conn)
        self.reminders = SqlReminderRepository(conn)
