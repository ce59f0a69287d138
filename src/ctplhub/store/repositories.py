"""Repositories: SQL on one ``Connection``, rows mapped to domain and port types.

A repository never commits; the unit of work does (STYLE.md example 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType, PolicyHead
from ctplhub.domain.vehicle import PlateClaim
from ctplhub.services.ports import (
    Activity,
    EventKey,
    HeadRow,
    InsurerKeyRecord,
    InsurerRecord,
    NewEventRow,
    PolicyKey,
    StoredEventRef,
    UserRecord,
)
from ctplhub.store.tables import (
    insurer_activity,
    insurer_keys,
    insurer_status_changes,
    insurers,
    policies,
    policy_events,
    users,
)

# Bound parameters per statement stay well under SQLite's limit of 32,766.
_IN_CHUNK = 500


def _upsert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK)]


class SqlEventRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def stored(self, keys: Sequence[EventKey]) -> dict[EventKey, StoredEventRef]:
        found: dict[EventKey, StoredEventRef] = {}
        t = policy_events.c
        for part in _chunks(list(dict.fromkeys(keys))):
            rows = self._conn.execute(
                select(
                    t.insurer_code, t.policy_no, t.version, t.id, t.content_hash, t.received_at
                ).where(tuple_(t.insurer_code, t.policy_no, t.version).in_(part))
            )
            for ins, pno, ver, event_id, content_hash, received_at in rows:
                found[(ins, pno, ver)] = StoredEventRef(event_id, content_hash, received_at)
        return found

    def add_many(self, rows: Sequence[NewEventRow]) -> list[int]:
        if not rows:
            return []
        result = self._conn.execute(
            insert(policy_events).returning(policy_events.c.id, sort_by_parameter_order=True),
            [asdict(row) for row in rows],
        )
        return [row[0] for row in result]

    def plate_claims(self, plates: Sequence[str], at: datetime) -> list[PlateClaim]:
        t = policy_events.c
        claims: list[PlateClaim] = []
        for part in _chunks(list(dict.fromkeys(plates))):
            rows = self._conn.execute(
                select(t.vin, t.plate, t.occurred_at, t.id).where(
                    t.plate.in_(part), t.occurred_at <= at
                )
            )
            claims.extend(PlateClaim(*row) for row in rows)
        return claims

    def latest_claims(self, vins: Sequence[str], at: datetime) -> list[PlateClaim]:
        t = policy_events.c
        claims: list[PlateClaim] = []
        for part in _chunks(list(dict.fromkeys(vins))):
            rows = self._conn.execute(
                select(t.vin, t.plate, t.occurred_at, t.id).where(
                    t.vin.in_(part), t.occurred_at <= at
                )
            )
            claims.extend(PlateClaim(*row) for row in rows)
        return claims

    def owner_index_of(self, vin: str) -> bytes | None:
        """The blind index of the owner named by the vehicle's newest event."""
        t = policy_events.c
        row = self._conn.execute(
            select(t.owner_id_bidx)
            .where(t.vin == vin)
            .order_by(t.occurred_at.desc(), t.id.desc())
            .limit(1)
        ).first()
        return bytes(row[0]) if row else None


class SqlPolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def heads(self, keys: Sequence[PolicyKey]) -> dict[PolicyKey, PolicyHead]:
        t = policies.c
        found: dict[PolicyKey, PolicyHead] = {}
        for part in _chunks(list(dict.fromkeys(keys))):
            query = select(t.insurer_code, t.policy_no, t.version, t.event_type).where(
                tuple_(t.insurer_code, t.policy_no).in_(part)
            )
            if self._conn.dialect.name == "postgresql":
                # Serialise writers of the same policy so "closed" cannot race a new version.
                query = query.with_for_update()
            for ins, pno, version, event_type in self._conn.execute(query):
                found[(ins, pno)] = PolicyHead(version, EventType(event_type))
        return found

    def upsert_heads(self, rows: Sequence[HeadRow], event_ids: Sequence[int]) -> None:
        if not rows:
            return
        values = [
            {
                "insurer_code": r.insurer_code,
                "policy_no": r.policy_no,
                "version": r.version,
                "event_type": r.event_type,
                "vin": r.vin,
                "coverage_start": r.coverage_start,
                "coverage_end": r.coverage_end,
                "effective_at": r.effective_at,
                "event_id": event_ids[r.event_index],
            }
            for r in rows
        ]
        stmt = _upsert(self._conn, policies)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[policies.c.insurer_code, policies.c.policy_no],
            set_={
                name: excluded[name]
                for name in (
                    "version",
                    "event_type",
                    "vin",
                    "coverage_start",
                    "coverage_end",
                    "effective_at",
                    "event_id",
                )
            },
            # Highest version wins whatever the arrival order, even between processes.
            where=excluded.version > policies.c.version,
        )
        self._conn.execute(stmt, values)

    def for_vins(self, vins: Sequence[str]) -> dict[str, list[PolicyState]]:
        t = policies.c
        found: dict[str, list[PolicyState]] = {}
        for part in _chunks(list(dict.fromkeys(vins))):
            rows = self._conn.execute(
                select(
                    t.vin,
                    t.insurer_code,
                    t.policy_no,
                    t.version,
                    t.event_type,
                    t.coverage_start,
                    t.coverage_end,
                    t.effective_at,
                ).where(t.vin.in_(part))
            )
            for vin, ins, pno, version, event_type, start, end, effective_at in rows:
                found.setdefault(vin, []).append(
                    PolicyState(ins, pno, version, EventType(event_type), start, end, effective_at)
                )
        return found


def _insurer(row: Any) -> InsurerRecord:
    return InsurerRecord(
        code=row.code,
        name=row.name,
        status=row.status,
        status_reason=row.status_reason,
        status_changed_at=row.status_changed_at,
        last_sync_at=row.last_sync_at,
    )


class SqlInsurerRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, code: str) -> InsurerRecord | None:
        row = self._conn.execute(select(insurers).where(insurers.c.code == code)).first()
        return _insurer(row) if row else None

    def all(self) -> list[InsurerRecord]:
        return [_insurer(r) for r in self._conn.execute(select(insurers).order_by(insurers.c.code))]

    def add(self, code: str, name: str, actor: str, at: datetime) -> None:
        self._conn.execute(
            insert(insurers).values(
                code=code,
                name=name,
                status="certified",
                status_reason="registered",
                status_changed_at=at,
                status_changed_by=actor,
                created_at=at,
                last_sync_at=None,
            )
        )
        self._conn.execute(
            insert(insurer_status_changes).values(
                insurer_code=code, status="certified", reason="registered", actor=actor, at=at
            )
        )

    def set_status(self, code: str, status: str, reason: str, actor: str, at: datetime) -> None:
        self._conn.execute(
            update(insurers)
            .where(insurers.c.code == code)
            .values(
                status=status, status_reason=reason, status_changed_at=at, status_changed_by=actor
            )
        )
        self._conn.execute(
            insert(insurer_status_changes).values(
                insurer_code=code, status=status, reason=reason, actor=actor, at=at
            )
        )

    def add_key(self, key_id: str, code: str, secret_enc: bytes, at: datetime) -> None:
        self._conn.execute(
            insert(insurer_keys).values(
                key_id=key_id, insurer_code=code, secret_enc=secret_enc, created_at=at
            )
        )

    def key(self, key_id: str) -> InsurerKeyRecord | None:
        t = insurer_keys.c
        row = self._conn.execute(
            select(t.key_id, t.insurer_code, t.secret_enc).where(
                t.key_id == key_id, t.revoked_at.is_(None)
            )
        ).first()
        return InsurerKeyRecord(row[0], row[1], bytes(row[2])) if row else None

    def touch_sync(self, code: str, at: datetime) -> None:
        """Move the watermark forward, never back."""
        c = insurers.c
        self._conn.execute(
            update(insurers)
            .where(c.code == code, (c.last_sync_at.is_(None)) | (c.last_sync_at < at))
            .values(last_sync_at=at)
        )

    def record_activity(self, code: str, minute: datetime, accepted: int, rejected: int) -> None:
        stmt = _upsert(self._conn, insurer_activity).values(
            insurer_code=code, minute=minute, accepted=accepted, rejected=rejected
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[insurer_activity.c.insurer_code, insurer_activity.c.minute],
            set_={
                "accepted": insurer_activity.c.accepted + stmt.excluded.accepted,
                "rejected": insurer_activity.c.rejected + stmt.excluded.rejected,
            },
        )
        self._conn.execute(stmt)

    def activity_since(self, code: str, since: datetime) -> Activity:
        c = insurer_activity.c
        row = self._conn.execute(
            select(
                func.coalesce(func.sum(c.accepted), 0), func.coalesce(func.sum(c.rejected), 0)
            ).where(and_(c.insurer_code == code, c.minute >= since))
        ).one()
        return Activity(int(row[0]), int(row[1]))


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, name: str, role: str, token_hash: str, at: datetime) -> None:
        self._conn.execute(
            insert(users).values(name=name, role=role, token_hash=token_hash, created_at=at)
        )

    def by_token_hash(self, token_hash: str) -> UserRecord | None:
        c = users.c
        row = self._conn.execute(
            select(c.name, c.role).where(c.token_hash == token_hash, c.disabled_at.is_(None))
        ).first()
        return UserRecord(row[0], row[1]) if row else None
