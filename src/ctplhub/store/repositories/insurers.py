"""Insurers: registration, certification history, API keys, sync watermark and activity
counters (DESIGN §2.6, §5.1, §5.2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ctplhub.services.ports import Activity, InsurerKeyRecord, InsurerRecord
from ctplhub.store.statements import INSURER_COLUMNS
from ctplhub.store.tables import insurer_activity, insurer_keys, insurer_status_changes, insurers

_RECORD = select(*(insurers.c[name] for name in INSURER_COLUMNS))


def _record(row: Any) -> InsurerRecord:
    return InsurerRecord(*row)


class SqlInsurerRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, code: str) -> InsurerRecord | None:
        row = self._conn.execute(_RECORD.where(insurers.c.code == code)).first()
        return _record(row) if row else None

    def all(self) -> list[InsurerRecord]:
        return [_record(r) for r in self._conn.execute(_RECORD.order_by(insurers.c.code))]

    def add(
        self, code: str, name: str, actor: str, at: datetime, claims_phone: str | None = None
    ) -> None:
        self._conn.execute(
            insert(insurers).values(
                code=code,
                name=name,
                claims_phone=claims_phone,
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
        """The key with its end (``revoked_at``, which a rotation sets in the future);
        whether it is still valid is the service's to decide, by its clock."""
        t = insurer_keys.c
        row = self._conn.execute(
            select(t.key_id, t.insurer_code, t.secret_enc, t.revoked_at).where(t.key_id == key_id)
        ).first()
        return InsurerKeyRecord(row[0], row[1], bytes(row[2]), row[3]) if row else None

    def end_keys(self, code: str, at: datetime) -> list[str]:
        t = insurer_keys.c
        which = and_(t.insurer_code == code, or_(t.revoked_at.is_(None), t.revoked_at > at))
        ids = [r[0] for r in self._conn.execute(select(t.key_id).where(which))]
        self._conn.execute(update(insurer_keys).where(which).values(revoked_at=at))
        return sorted(ids)

    def touch_sync(self, code: str, at: datetime) -> None:
        """Move the watermark forward, never back."""
        c = insurers.c
        self._conn.execute(
            update(insurers)
            .where(c.code == code, (c.last_sync_at.is_(None)) | (c.last_sync_at < at))
            .values(last_sync_at=at)
        )

    def record_activity(self, code: str, minute: datetime, accepted: int, rejected: int) -> None:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(insurer_activity).values(
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
