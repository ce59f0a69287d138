"""The reminder outbox (DESIGN §7; docs/reminders-contract.md): the decision queries a
unit of work runs. The delivering side's port is ``store/repositories/outbox.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    union,
    update,
)

from ctplhub.services.reminder_ports import (
    CANCELLED,
    PENDING,
    ClosedPolicy,
    ExistingReminder,
    NearEnd,
    NewReminder,
    PolicyHeadRow,
    ReminderKey,
    ReminderRepository,
    Subscriber,
    SubscriptionRepository,
)
from ctplhub.store.pg_bulk import CopyColumns, copy_in, driver_cursor
from ctplhub.store.repositories.clauses import chunks
from ctplhub.store.repositories.subscriptions import SqlSubscriptionRepository
from ctplhub.store.tables import (
    Id64,
    UTCDateTime,
    policies,
    policy_events,
    reminders,
    subscriptions,
)
from ctplhub.store.unit_of_work import SqlTransaction

_r = reminders.c
_s = subscriptions.c
_p = policies.c
# The predicate of the partial ``ix_policies_closed`` (migration 0013), its values
# written into the SQL, as both engines need to match a query to a partial index.
_IS_CLOSED = _p.event_type.in_(
    bindparam("closing_kinds", ["surrender", "cancel"], expanding=True, literal_execute=True)
)

_NEW_COLUMNS = CopyColumns.of(
    reminders,
    (
        "subscription_id",
        "insurer_code",
        "policy_no",
        "rule",
        "vin",
        "covered_until",
        "state",
        "due_at",
        "next_attempt_at",
        "attempts",
        "updated_at",
        "dispute_id",
    ),
)

# ``near_end``'s working set: a temporary table (this connection only), made and dropped
# within one pass.
_NEAR = Table(
    "reminder_near",
    MetaData(),
    Column("id", Id64, primary_key=True, autoincrement=False),
    Column("vin", String(17), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    prefixes=["TEMPORARY"],
)


class SqlReminderRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def near_end(self, since: datetime, until: datetime, at: datetime) -> NearEnd:
        """``ReminderRepository.near_end``: the subscriptions whose vehicle has a cover
        ending in the window are found once, into a temporary table of this transaction,
        and their vehicles' policies and queued rows are read by joining it. Never a list
        of VINs or ids sent back as parameters, and the window's join is not run three
        times (docs/PERFORMANCE.md, issue 9)."""
        live = and_(_s.ended_at.is_(None), _s.created_at <= at)
        ends = (
            _p.coverage_end.between(since, until),
            and_(_p.effective_at.between(since, until), _p.event_type == "surrender"),
        )
        found = union(
            *(
                select(_s.id, _s.vin, _s.created_at)
                .select_from(subscriptions.join(policies, _p.vin == _s.vin))
                .where(live, end, _p.event_type != "cancel")
                for end in ends
            )
        )
        _NEAR.drop(self._conn, checkfirst=True)  # a connection's earlier pass that failed
        _NEAR.create(self._conn)
        try:
            self._conn.execute(insert(_NEAR).from_select(["id", "vin", "created_at"], found))
            near = _NEAR.c
            subscribers = [
                Subscriber(sid, vin, created)
                for sid, vin, created in self._conn.execute(
                    select(near.id, near.vin, near.created_at).order_by(near.id)
                )
            ]
            heads: dict[str, list[PolicyHeadRow]] = {}
            vins = select(near.vin).distinct().subquery("near_vins")
            rows = self._conn.execute(
                select(
                    _p.vin,
                    _p.insurer_code,
                    _p.policy_no,
                    _p.event_type,
                    _p.coverage_start,
                    _p.coverage_end,
                    _p.effective_at,
                ).select_from(vins.join(policies, _p.vin == vins.c.vin))
            )
            for vin, code, pno, kind, start, end, cut in rows:
                heads.setdefault(vin, []).append((code, pno, kind, start, end, cut))
            existing: dict[ReminderKey, ExistingReminder] = {}
            queued = self._conn.execute(
                select(
                    _r.insurer_code, _r.policy_no, _r.rule, _r.subscription_id, _r.id, _r.state
                ).select_from(_NEAR.join(reminders, _r.subscription_id == near.id))
            )
            for code, pno, rule, sid, rid, state in queued:
                existing[(code, pno, rule, sid)] = ExistingReminder(rid, state)
        finally:
            _NEAR.drop(self._conn)
        return NearEnd(subscribers, heads, existing)

    def add_many(self, rows: Sequence[NewReminder]) -> int:
        if not rows:
            return 0
        if self._conn.dialect.name == "postgresql":
            return self._add_many_postgresql(rows)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(reminders).on_conflict_do_nothing().returning(_r.id)
        values = [
            {
                "subscription_id": row.subscription_id,
                "insurer_code": row.insurer_code,
                "policy_no": row.policy_no,
                "rule": row.rule,
                "vin": row.vin,
                "covered_until": row.covered_until,
                "state": row.state,
                "due_at": row.due_at,
                "next_attempt_at": row.next_attempt_at,
                "attempts": 0,
                "updated_at": row.due_at,
                "dispute_id": row.dispute_id,
            }
            for row in rows
        ]
        return len(self._conn.execute(stmt, values).all())

    def _add_many_postgresql(self, rows: Sequence[NewReminder]) -> int:
        """Binary ``COPY`` into a temporary table, then one ``INSERT ... SELECT ... ON
        CONFLICT DO NOTHING``. A multi-row ``VALUES`` of thousands of rows cost more in
        psycopg's client-side handling of the statement than PostgreSQL spent inserting
        (docs/PERFORMANCE.md §14)."""
        names = ", ".join(_NEW_COLUMNS.names)
        cursor = driver_cursor(self._conn)
        # This connection's own table, kept empty between transactions.
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS reminder_new ON COMMIT DELETE ROWS "
            f"AS SELECT {names} FROM reminders WITH NO DATA"
        )
        cursor.execute("DELETE FROM reminder_new")  # an earlier call in this transaction
        copy_in(
            cursor,
            "reminder_new",
            _NEW_COLUMNS,
            (
                (
                    r.subscription_id,
                    r.insurer_code,
                    r.policy_no,
                    r.rule,
                    r.vin,
                    r.covered_until,
                    r.state,
                    r.due_at,
                    r.next_attempt_at,
                    0,
                    r.due_at,
                    r.dispute_id,
                )
                for r in rows
            ),
        )
        cursor.execute(
            f"INSERT INTO reminders ({names}) SELECT {names} FROM reminder_new "
            "ON CONFLICT DO NOTHING"
        )
        return int(cursor.rowcount)

    def set_state(self, ids: Sequence[int], state: str, at: datetime) -> None:
        for part in chunks(self._conn, list(ids)):
            self._conn.execute(
                update(reminders)
                .where(_r.id.in_(part), _r.state == PENDING)
                .values(state=state, updated_at=at, claimed_by=None, claimed_until=None)
            )

    def count_pending_due(self, at: datetime) -> tuple[int, int]:
        due = and_(_r.state == PENDING, _r.due_at <= at)
        query = select(
            func.count(),
            func.coalesce(func.sum(case((_r.next_attempt_at > at, 1), else_=0)), 0),
        ).where(due)
        total, waiting = self._conn.execute(query).one()
        return int(total), int(waiting)

    def cancel_pending_of(self, subscription_id: int, at: datetime) -> int:
        result = self._conn.execute(
            update(reminders)
            .where(_r.subscription_id == subscription_id, _r.state == PENDING)
            .values(state=CANCELLED, updated_at=at, claimed_by=None, claimed_until=None)
        )
        return result.rowcount

    def _closings(self) -> Any:
        first = policy_events.alias("first_event")
        issued = (
            select(func.min(first.c.occurred_at))
            .where(first.c.insurer_code == _p.insurer_code, first.c.policy_no == _p.policy_no)
            .scalar_subquery()
        )
        e = policy_events.c
        return (
            select(
                _p.insurer_code,
                _p.policy_no,
                _p.vin,
                _p.event_type,
                issued.label("issued_at"),
                e.occurred_at,
                _p.coverage_start,
                _p.coverage_end,
                _p.effective_at,
            )
            .select_from(policies.join(policy_events, e.id == _p.event_id))
            .where(_IS_CLOSED)
        )

    def closed_near(
        self, since: datetime, until: datetime, at: datetime
    ) -> list[tuple[ClosedPolicy, int]]:
        query = (
            self._closings()
            .add_columns(_s.id)
            .join(subscriptions, and_(_s.vin == _p.vin, _s.ended_at.is_(None), _s.created_at <= at))
            .where(policy_events.c.received_at.between(since, until))
        )
        return [(_closed(row[:9]), row[9]) for row in self._conn.execute(query)]

    def closed_between(
        self, since: datetime, until: datetime, insurer_code: str | None, limit: int
    ) -> list[ClosedPolicy]:
        e = policy_events.c
        query = self._closings().where(e.occurred_at >= since, e.occurred_at < until)
        if insurer_code is not None:
            query = query.where(_p.insurer_code == insurer_code)
        query = query.order_by(e.occurred_at, _p.insurer_code, _p.policy_no).limit(limit)
        return [_closed(row) for row in self._conn.execute(query)]


def _closed(row: Sequence[Any]) -> ClosedPolicy:
    code, pno, vin, kind, issued, closed, start, end, cut = row
    until = start if kind == "cancel" else min(end, cut) if cut is not None else end
    return ClosedPolicy(code, pno, vin, kind, issued or closed, closed, start, max(until, start))


class SqlReminderUnitOfWork(SqlTransaction):
    """Subscriptions and the outbox in one transaction (``ReminderUnitOfWork``)."""

    subscriptions: SubscriptionRepository
    reminders: ReminderRepository

    def _bind(self, conn: Connection) -> None:
        self.subscriptions = SqlSubscriptionRepository(conn)
        self.reminders = SqlReminderRepository(conn)
