"""``SqlOutbox``: the delivering side's port on the ``reminders`` table (DESIGN §7;
docs/reminders-contract.md). Every call is one committed transaction.

A claim is one ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING id``: on PostgreSQL
the inner select locks its rows ``FOR UPDATE SKIP LOCKED``, so two workers claiming at
once each take rows the other did not; on SQLite the statement runs under the database's
single writer lock, which serialises claims. A lease (``claimed_until``) hands the rows
of a killed worker to the next claim after it ends. A claimed row is checked once more
before it is handed out: a subscription ended since, or a renewal that arrived since it
was queued (a policy of the vehicle ending after the reminded end), cancels it, and a
``before`` reminder whose cover has already ended is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, or_, select, update

from ctplhub.domain.identifiers import Plate, mask_vin
from ctplhub.domain.reminders import ReminderRules, in_quiet_hours
from ctplhub.services.check_coverage import mask_policy_no
from ctplhub.services.ports import PersonalData
from ctplhub.services.reminder_ports import (
    CANCELLED,
    DEAD,
    DISPUTE_KINDS,
    KIND_CANCELLED,
    PENDING,
    SENT,
    SKIPPED,
    DeadLetter,
    OutboxCounts,
    OutboxMessage,
)
from ctplhub.store.repositories.clauses import chunks
from ctplhub.store.tables import (
    disputes,
    insurers,
    policies,
    policy_events,
    reminders,
    subscriptions,
)

_r = reminders.c
_s = subscriptions.c

AddressAad = Callable[[str, str], bytes]
"""(vin, channel) → the associated data an address is sealed under."""
TokenMint = Callable[[bytes], str]
"""A subscription's token salt → its unsubscribe token."""


def mask_address(channel: str, address: str) -> str:
    """What an operator may see of an address: enough to tell two apart, no more."""
    if channel == "email":
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    if channel == "sms":
        return address[:3] + "****" + address[-4:] if len(address) > 7 else "****"
    scheme, _, rest = address.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"


class SqlOutbox:
    """``Outbox`` on the ``reminders`` table; every call is one committed transaction."""

    def __init__(
        self,
        engine: Engine,
        personal: PersonalData,
        address_aad: AddressAad,
        mint: TokenMint,
        public_url: str,
        rules: ReminderRules = ReminderRules(),
    ) -> None:
        self._engine = engine
        self._personal = personal
        self._aad = address_aad
        self._mint = mint
        self._public_url = public_url.rstrip("/")
        self._rules = rules

    def claim(
        self, at: datetime, limit: int, worker_id: str, lease: timedelta
    ) -> list[OutboxMessage]:
        if limit <= 0 or in_quiet_hours(at, self._rules):
            return []
        with self._engine.begin() as conn:
            due = (
                select(_r.id)
                .where(
                    _r.state == PENDING,
                    _r.next_attempt_at <= at,
                    or_(_r.claimed_until.is_(None), _r.claimed_until <= at),
                )
                .order_by(_r.next_attempt_at, _r.id)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            claimed = (
                conn.execute(
                    update(reminders)
                    .where(_r.id.in_(due.scalar_subquery()))
                    .values(
                        claimed_by=worker_id[:64],
                        claimed_until=at + lease,
                        attempts=_r.attempts + 1,
                        updated_at=at,
                    )
                    .returning(_r.id)
                )
                .scalars()
                .all()
            )
            if not claimed:
                return []
            messages, stale = self._details(conn, list(claimed), at)
            for state, ids in stale.items():
                if ids:
                    conn.execute(
                        update(reminders)
                        .where(_r.id.in_(ids))
                        .values(state=state, claimed_by=None, claimed_until=None, updated_at=at)
                    )
        return sorted(messages, key=lambda m: (m.due_at, m.id))

    def _details(
        self, conn: Connection, ids: list[int], at: datetime
    ) -> tuple[list[OutboxMessage], dict[str, list[int]]]:
        e = policy_events.c
        plate = (
            select(e.plate)
            .where(e.vin == _r.vin)
            .order_by(e.occurred_at.desc(), e.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        later = policies.alias("later")
        renewed = exists().where(
            later.c.vin == _r.vin,
            later.c.event_type != "cancel",
            later.c.coverage_end > _r.covered_until,
            or_(
                later.c.event_type != "surrender",
                later.c.effective_at.is_(None),
                later.c.effective_at > _r.covered_until,
            ),
        )
        query = (
            select(
                _r.id,
                _r.subscription_id,
                _s.channel,
                _s.address_enc,
                _s.language,
                _s.token_salt,
                _s.vin,
                _s.ended_at,
                _r.rule,
                _r.insurer_code,
                insurers.c.name,
                _r.policy_no,
                _r.covered_until,
                _r.attempts,
                _r.due_at,
                plate.label("plate"),
                renewed.label("renewed"),
                _r.dispute_id,
                disputes.c.outcome,
            )
            .select_from(
                reminders.join(subscriptions, _s.id == _r.subscription_id)
                .outerjoin(insurers, insurers.c.code == _r.insurer_code)
                .outerjoin(disputes, disputes.c.id == _r.dispute_id)
            )
            .where(_r.id.in_(ids))
        )
        messages: list[OutboxMessage] = []
        stale: dict[str, list[int]] = {CANCELLED: [], SKIPPED: []}
        for row in conn.execute(query):
            rid, sid, channel, address_enc, language, salt, vin, ended_at, rule = row[:9]
            code, name, pno, until, attempts, due_at, plate_value, is_renewed = row[9:17]
            dispute_id, outcome = row[17:]
            if ended_at is not None:
                stale[CANCELLED].append(rid)
                continue
            # A renewal cancels a reminder, never an alert or a dispute's notice.
            if rule != KIND_CANCELLED and rule not in DISPUTE_KINDS:
                if is_renewed:
                    stale[CANCELLED].append(rid)
                    continue
                if rule.startswith(("before_", "early_risk_")) and until <= at:
                    stale[SKIPPED].append(rid)  # ran out before it could be sent
                    continue
            token = self._mint(salt)
            messages.append(
                OutboxMessage(
                    id=rid,
                    subscription_id=sid,
                    channel=channel,
                    address=self._personal.decrypt(address_enc, aad=self._aad(vin, channel)),
                    language=language,
                    kind=rule,
                    rule_days=_rule_days(rule),
                    plate=Plate.parse(plate_value).display if plate_value else "",
                    vin_masked=mask_vin(vin),
                    insurer_code=code,
                    insurer_name=name or code,
                    policy_no_masked=mask_policy_no(pno),
                    covered_until=until,
                    unsubscribe_token=token,
                    unsubscribe_url=(
                        f"{self._public_url}/v1/subscriptions/{sid}/unsubscribe?token={token}"
                    ),
                    attempts=attempts,
                    due_at=due_at,
                    dispute_id=dispute_id or None,
                    dispute_outcome=outcome,
                )
            )
        return messages, stale

    def mark_sent(self, message_id: int, at: datetime) -> None:
        self.mark_sent_many([message_id], at)

    def mark_sent_many(self, message_ids: Sequence[int], at: datetime) -> None:
        with self._engine.begin() as conn:
            for part in chunks(conn, list(message_ids)):
                conn.execute(
                    update(reminders)
                    .where(_r.id.in_(part), _r.state == PENDING)
                    .values(
                        state=SENT,
                        sent_at=at,
                        claimed_by=None,
                        claimed_until=None,
                        last_error=None,
                        updated_at=at,
                    )
                )

    def mark_failed(
        self, message_id: int, at: datetime, error_code: str, next_attempt_at: datetime | None
    ) -> None:
        values: dict[str, Any] = {
            "claimed_by": None,
            "claimed_until": None,
            "last_error": error_code[:64],
            "updated_at": at,
        }
        if next_attempt_at is None:
            values["state"] = DEAD
        else:
            values["next_attempt_at"] = next_attempt_at
        with self._engine.begin() as conn:
            conn.execute(
                update(reminders).where(_r.id == message_id, _r.state == PENDING).values(values)
            )

    def defer(self, message_id: int, until: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(reminders)
                .where(_r.id == message_id, _r.state == PENDING)
                .values(
                    next_attempt_at=until,
                    claimed_by=None,
                    claimed_until=None,
                    attempts=func.max(_r.attempts - 1, 0)
                    if conn.dialect.name == "sqlite"
                    else func.greatest(_r.attempts - 1, 0),
                )
            )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        query = (
            select(
                _r.id,
                _s.channel,
                _s.address_enc,
                _s.vin,
                _r.rule,
                _r.attempts,
                _r.last_error,
                _r.due_at,
                _r.updated_at,
                select(policy_events.c.plate)
                .where(policy_events.c.vin == _r.vin)
                .order_by(policy_events.c.occurred_at.desc(), policy_events.c.id.desc())
                .limit(1)
                .scalar_subquery(),
            )
            .select_from(reminders.join(subscriptions, _s.id == _r.subscription_id))
            .where(_r.state == DEAD)
            .order_by(_r.updated_at.desc(), _r.id.desc())
            .limit(limit)
        )
        letters = []
        with self._engine.connect() as conn:
            for (
                rid,
                channel,
                enc,
                vin,
                rule,
                attempts,
                error,
                due_at,
                failed_at,
                plate,
            ) in conn.execute(query):
                address = self._personal.decrypt(enc, aad=self._aad(vin, channel))
                letters.append(
                    DeadLetter(
                        id=rid,
                        channel=channel,
                        address_masked=mask_address(channel, address),
                        kind=rule,
                        plate=Plate.parse(plate).display if plate else "",
                        attempts=attempts,
                        last_error=error,
                        due_at=due_at,
                        failed_at=failed_at,
                    )
                )
        return letters

    def redrive(self, ids: Sequence[int] | None, at: datetime) -> int:
        values = {
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": at,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": at,
        }
        count = 0
        with self._engine.begin() as conn:
            if ids is None:
                result = conn.execute(update(reminders).where(_r.state == DEAD).values(values))
                return result.rowcount
            for part in chunks(conn, list(ids)):
                result = conn.execute(
                    update(reminders).where(_r.id.in_(part), _r.state == DEAD).values(values)
                )
                count += result.rowcount
        return count

    def counts(self, at: datetime) -> OutboxCounts:
        with self._engine.connect() as conn:
            by_state: dict[str, int] = {
                state: count
                for state, count in conn.execute(select(_r.state, func.count()).group_by(_r.state))
            }
            due = conn.execute(
                select(func.count())
                .select_from(reminders)
                .where(_r.state == PENDING, _r.next_attempt_at <= at)
            ).scalar_one()
        return OutboxCounts(
            pending=by_state.get(PENDING, 0),
            due=due,
            sent=by_state.get(SENT, 0),
            skipped=by_state.get(SKIPPED, 0),
            cancelled=by_state.get(CANCELLED, 0),
            dead=by_state.get(DEAD, 0),
        )


def _rule_days(rule: str) -> int:
    if rule == KIND_CANCELLED:
        return 0
    digits = "".join(ch for ch in rule if ch.isdigit())
    return int(digits) if digits else 0
