"""Use case: disputes (DESIGN §10; docs/DECISIONS.md, "Disputes").

- ``file``: a verified owner (the verified query body of §3: a wrong factor is ``404
  not_found`` exactly like an unknown plate, no factor ``400 validation_failed``) files a
  dispute of a ``kind`` with a ``message``. It goes to the insurer of the vehicle's
  latest policy (latest ``coverage_start``, a cancelled one too: its insurer wrote the
  record in question). It is due ``sla_days`` working days later (``domain/
  working_days.py``). The owner gets a token, shown once; only its SHA-256 is kept.
- ``status``: by id and token; a wrong token is the same ``404`` as an unknown id.
- ``insurer_queue`` / ``resolve``: the insurer's own disputes only (``403
  insurer_mismatch``); resolving a resolved dispute is ``409 dispute_closed``, an
  escalated one may still be resolved (``domain/disputes.py``).
- ``escalate(at)``: open disputes past ``due_at`` become ``escalated``; run by the worker
  every minute and by ``ctplhub disputes escalate``. Each move is a conditional UPDATE
  (``WHERE status = 'open'``), so two workers never escalate one dispute twice, and a
  rerun finds nothing left to do.
- ``regulator_list``: what the regulators see (``GET /v1/disputes?status=escalated``).

Each step writes its history entry and the owner's notices (one per active subscription
of the vehicle, kinds ``dispute_opened`` / ``dispute_resolved`` / ``dispute_escalated``)
into the reminder outbox in the step's own transaction; the outbox key holds the dispute,
so a step is told to a subscription at most once. Every step is access-logged.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from ctplhub.domain import disputes as rules
from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.errors import DisputeClosed, InsurerMismatch, NotFound, ValidationFailed
from ctplhub.domain.identifiers import Plate
from ctplhub.domain.policy import normalise_insurer_code
from ctplhub.domain.reminders import ReminderRules, next_send_instant
from ctplhub.domain.working_days import WorkingCalendar
from ctplhub.services.check_coverage import CheckCoverage, CoverageQuery
from ctplhub.services.dispute_ports import DisputeRow, DisputeUnitOfWork, NewDispute
from ctplhub.services.ports import AccessLog, Clock, PersonalData, Reader
from ctplhub.services.reminder_ports import (
    KIND_DISPUTE_ESCALATED,
    KIND_DISPUTE_OPENED,
    KIND_DISPUTE_RESOLVED,
    PENDING,
    NewReminder,
)

_log = structlog.get_logger("ctplhub.disputes")

FILE_PURPOSE = "dispute"
STATUS_PURPOSE = "dispute_status"
QUEUE_PURPOSE = "dispute_queue"
RESOLVE_PURPOSE = "dispute_resolution"
ESCALATE_PURPOSE = "dispute_escalation"
OVERSIGHT_PURPOSE = "dispute_oversight"
SYSTEM = Reader("ctplhub", "regulator", ESCALATE_PURPOSE)
"""An escalation hands the dispute to the regulators: the access log names that role."""
LIST_LIMIT = 1000
ESCALATE_BATCH = 500
_NOT_FOUND = "no dispute with this id and token"


def message_aad(token_hash: str) -> bytes:
    """Binds a sealed message to its dispute (known before the row has an id)."""
    return f"disputes|{token_hash}|message".encode()


def note_aad(dispute_id: int) -> bytes:
    return f"disputes|{dispute_id}|note".encode()


@dataclass(frozen=True, slots=True)
class DisputeRequest:
    """``POST /v1/disputes``: the verified query and the complaint, as they arrived."""

    query: CoverageQuery
    kind: object
    message: object


@dataclass(frozen=True, slots=True)
class DisputeFiled:
    dispute_id: int
    status: str
    insurer_code: str
    due_at: datetime
    token: str  # shown once, never stored


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    status: str
    note: str | None


@dataclass(frozen=True, slots=True)
class DisputeStatus:
    dispute_id: int
    status: str
    history: tuple[HistoryEntry, ...]


@dataclass(frozen=True, slots=True)
class DisputeSummary:
    """A dispute as its insurer (and a regulator) lists it."""

    dispute_id: int
    kind: str
    plate: str  # display form
    message: str
    opened_at: datetime
    due_at: datetime
    status: str
    insurer_code: str


@dataclass(frozen=True, slots=True)
class EscalationTally:
    escalated: int
    notices: int
    dispute_ids: tuple[int, ...]


def latest_policy(policies: Sequence[PolicyState]) -> PolicyState | None:
    """The policy with the latest ``coverage_start`` (ties: the later end, then the
    insurer code and number, so the choice never depends on the order of reading)."""
    if not policies:
        return None
    return max(
        policies, key=lambda p: (p.coverage_start, p.coverage_end, p.insurer_code, p.policy_no)
    )


class Disputes:
    def __init__(
        self,
        uow: Callable[[], DisputeUnitOfWork],
        coverage: CheckCoverage,
        personal: PersonalData,
        clock: Clock,
        *,
        access_log: AccessLog,
        calendar: WorkingCalendar,
        new_token: Callable[[], str],
        hash_token: Callable[[str], str],
        sla_days: int = 3,
        reminder_rules: ReminderRules = ReminderRules(),
    ) -> None:
        self._uow = uow
        self._coverage = coverage
        self._personal = personal
        self._clock = clock
        self._access_log = access_log
        self._calendar = calendar
        self._new_token = new_token
        self._hash = hash_token
        self.sla_days = sla_days
        self._rules = reminder_rules

    def now(self) -> datetime:
        return self._clock()

    def due_at(self, opened_at: datetime) -> datetime:
        """``sla_days`` working days after ``opened_at``; a deadline that crosses a year
        the working-day file does not hold counts Monday to Friday there, and says so."""
        due = self._calendar.add_working_days(opened_at, self.sla_days)
        missing = sorted(
            {d.year for d in self._calendar.days_counted(opened_at, due)}
            - set(self._calendar.years)
        )
        if missing:
            _log.warning("dispute_deadline_beyond_holiday_calendar", years=missing)
        return due

    # --- owners ---

    async def file(self, request: DisputeRequest, reader: Reader) -> DisputeFiled:
        kind = rules.checked_kind(request.kind)
        message = rules.checked_text(request.message, "message", required=True)
        if request.query.at is not None:
            raise ValidationFailed(
                "a dispute is about the vehicle now: at is not accepted",
                details=[{"field": "at", "problem": "Extra inputs are not permitted"}],
            )
        vehicle = await self._coverage.verified_vehicle(request.query)
        policy = latest_policy(vehicle.policies)
        if policy is None:  # a vehicle is known only through its policies' events
            raise NotFound("no policy of this vehicle to dispute")
        now = self._clock()
        self._access_log.record(reader, vehicle.vin, now)
        plate = Plate.parse(request.query.plate).value
        return await asyncio.to_thread(self._file, vehicle.vin, plate, policy, kind, message, now)

    def _file(
        self, vin: str, plate: str, policy: PolicyState, kind: str, message: str, now: datetime
    ) -> DisputeFiled:
        token = self._new_token()
        digest = self._hash(token)
        due = self.due_at(now)
        new = NewDispute(
            vin=vin,
            plate=plate,
            insurer_code=policy.insurer_code,
            policy_no=policy.policy_no,
            kind=kind,
            message_enc=self._personal.encrypt(message, aad=message_aad(digest)),
            token_hash=digest,
            opened_at=now,
            due_at=due,
        )
        with self._uow() as uow:
            dispute_id = uow.disputes.add(new)
            uow.disputes.add_history(dispute_id, now, rules.OPEN, None)
            self._notify(uow, dispute_id, new, KIND_DISPUTE_OPENED, now)
            uow.commit()
        return DisputeFiled(dispute_id, rules.OPEN, policy.insurer_code, due, token)

    def status(self, dispute_id: object, token: object, reader: Reader) -> DisputeStatus:
        """The dispute's status and history; an unknown id and a wrong token are the
        same ``404 not_found``."""
        if not isinstance(token, str) or not token or len(token) > 128:
            raise NotFound(_NOT_FOUND)
        if not isinstance(dispute_id, int) or not 0 < dispute_id < 2**62:
            raise NotFound(_NOT_FOUND)
        with self._uow() as uow:
            row = uow.disputes.get(dispute_id)
            if row is None or not hmac.compare_digest(row.token_hash, self._hash(token)):
                raise NotFound(_NOT_FOUND)
            found = self._status(uow, row.id, row.status)
        self._access_log.record(reader, row.vin, self._clock())
        return found

    # --- insurers ---

    def insurer_queue(
        self, code: str, *, caller: str, status: object, reader: Reader
    ) -> list[DisputeSummary]:
        """The insurer's own disputes in ``status`` (default ``open``), oldest first, at
        most 1,000: the oldest are the ones to answer first."""
        code = _own(code, caller)
        wanted = rules.OPEN if status is None else rules.checked_status(status)
        with self._uow() as uow:
            rows = uow.disputes.listing(code, wanted, LIST_LIMIT)
        self._access_log.record_many(reader, [r.vin for r in rows], self._clock())
        return [self._summary(r) for r in rows]

    def resolve(
        self, dispute_id: object, *, caller: str, outcome: object, note: object
    ) -> DisputeStatus:
        checked_outcome = rules.checked_outcome(outcome)
        text = rules.checked_text(note, "note", required=True)
        if not isinstance(dispute_id, int) or not 0 < dispute_id < 2**62:
            raise NotFound("no dispute with this id")
        now = self._clock()
        with self._uow() as uow:
            row = uow.disputes.get(dispute_id)
            if row is None:
                raise NotFound("no dispute with this id")
            if row.insurer_code != caller:
                raise InsurerMismatch(f"this dispute is not for insurer {caller}")
            rules.check_resolvable(row.status)
            if not uow.disputes.move(
                dispute_id, rules.RESOLVABLE, rules.RESOLVED, now, checked_outcome
            ):
                raise DisputeClosed("this dispute was resolved meanwhile")
            sealed = self._personal.encrypt(
                rules.resolution_note(checked_outcome, text), aad=note_aad(dispute_id)
            )
            uow.disputes.add_history(dispute_id, now, rules.RESOLVED, sealed)
            self._notify(uow, dispute_id, row, KIND_DISPUTE_RESOLVED, now)
            found = self._status(uow, dispute_id, rules.RESOLVED)
            uow.commit()
        self._access_log.record(Reader(caller, "insurer", RESOLVE_PURPOSE), row.vin, now)
        return found

    # --- the system and regulators ---

    def escalate(self, at: datetime) -> EscalationTally:
        """Escalate every open dispute past its ``due_at`` at ``at``; idempotent."""
        done: list[DisputeRow] = []
        notices = 0
        while True:
            batch: list[DisputeRow] = []
            with self._uow() as uow:
                for row in uow.disputes.overdue(at, ESCALATE_BATCH):
                    if not rules.is_overdue(row.status, row.due_at, at):
                        continue
                    if uow.disputes.move(row.id, (rules.OPEN,), rules.ESCALATED, at):
                        uow.disputes.add_history(row.id, at, rules.ESCALATED, None)
                        notices += self._notify(uow, row.id, row, KIND_DISPUTE_ESCALATED, at)
                        batch.append(row)
                uow.commit()
            done.extend(batch)
            if len(batch) < ESCALATE_BATCH:
                break
        for row in done:
            self._access_log.record(SYSTEM, row.vin, at)
        if done:
            _log.info("disputes_escalated", escalated=len(done), notices=notices)
        return EscalationTally(len(done), notices, tuple(r.id for r in done))

    def regulator_list(self, status: object, reader: Reader) -> list[DisputeSummary]:
        wanted = rules.ESCALATED if status is None else rules.checked_status(status)
        with self._uow() as uow:
            rows = uow.disputes.listing(None, wanted, LIST_LIMIT)
        self._access_log.record_many(reader, [r.vin for r in rows], self._clock())
        return [self._summary(r) for r in rows]

    # --- shared ---

    def _notify(
        self,
        uow: DisputeUnitOfWork,
        dispute_id: int,
        dispute: NewDispute | DisputeRow,
        kind: str,
        at: datetime,
    ) -> int:
        """The owner's notices of one step, one per active subscription of the vehicle;
        ``covered_until`` carries the dispute's ``due_at`` (reminder_ports.OutboxMessage)."""
        send_at = next_send_instant(at, self._rules)
        rows = [
            NewReminder(
                subscription_id=sid,
                insurer_code=dispute.insurer_code,
                policy_no=dispute.policy_no,
                rule=kind,
                vin=dispute.vin,
                covered_until=dispute.due_at,
                state=PENDING,
                due_at=at,
                next_attempt_at=send_at,
                dispute_id=dispute_id,
            )
            for sid in uow.disputes.subscriptions_of(dispute.vin, at)
        ]
        return uow.reminders.add_many(rows)

    def _status(self, uow: DisputeUnitOfWork, dispute_id: int, status: str) -> DisputeStatus:
        entries = []
        for h in uow.disputes.history(dispute_id):
            if h.note_enc is not None:
                note: str | None = self._personal.decrypt(h.note_enc, aad=note_aad(dispute_id))
            else:
                note = rules.ESCALATION_NOTE if h.status == rules.ESCALATED else None
            entries.append(HistoryEntry(h.at, h.status, note))
        return DisputeStatus(dispute_id, status, tuple(entries))

    def _summary(self, row: DisputeRow) -> DisputeSummary:
        return DisputeSummary(
            dispute_id=row.id,
            kind=row.kind,
            plate=Plate.parse(row.plate).display,
            message=self._personal.decrypt(row.message_enc, aad=message_aad(row.token_hash)),
            opened_at=row.opened_at,
            due_at=row.due_at,
            status=row.status,
            insurer_code=row.insurer_code,
        )


def _own(code: str, caller: str) -> str:
    try:
        code = normalise_insurer_code(code)
    except ValidationFailed:
        raise InsurerMismatch(f"this key belongs to insurer {caller}") from None
    if code != caller:
        raise InsurerMismatch(f"this key belongs to insurer {caller}")
    return code
