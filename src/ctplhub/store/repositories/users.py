"""Named accounts, their bearer tokens and staff page sessions (DESIGN §1, §5).

Tokens and session ids are kept only as SHA-256, passwords only as Argon2id strings.
Every check reads the database: no process keeps a copy, so disabling a user, issuing a
new token or signing out holds in every process from the commit on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ctplhub.services.ports import UserRecord
from ctplhub.store.tables import staff_sessions, users

_c = users.c
_RECORD = (
    _c.name,
    _c.role,
    _c.created_at,
    _c.token_expires_at,
    _c.disabled_at,
    _c.password_hash.is_not(None),
)


def _record(row: Sequence[Any]) -> UserRecord:
    name, role, created_at, token_expires_at, disabled_at, has_password = row
    return UserRecord(name, role, created_at, token_expires_at, disabled_at, bool(has_password))


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def exists(self, name: str) -> bool:
        return self._conn.execute(select(_c.id).where(_c.name == name)).first() is not None

    def add(
        self, name: str, role: str, token_hash: str, token_expires_at: datetime, at: datetime
    ) -> None:
        self._conn.execute(
            insert(users).values(
                name=name,
                role=role,
                token_hash=token_hash,
                token_expires_at=token_expires_at,
                created_at=at,
            )
        )

    def get(self, name: str) -> UserRecord | None:
        row = self._conn.execute(select(*_RECORD).where(_c.name == name)).first()
        return _record(row) if row else None

    def all(self) -> list[UserRecord]:
        return [_record(r) for r in self._conn.execute(select(*_RECORD).order_by(_c.name))]

    def by_token_hash(self, token_hash: str) -> UserRecord | None:
        row = self._conn.execute(
            select(*_RECORD).where(_c.token_hash == token_hash, _c.disabled_at.is_(None))
        ).first()
        return _record(row) if row else None

    def set_token(self, name: str, token_hash: str, expires_at: datetime) -> None:
        self._conn.execute(
            update(users)
            .where(_c.name == name)
            .values(token_hash=token_hash, token_expires_at=expires_at)
        )

    def set_disabled(self, name: str, at: datetime | None) -> None:
        self._conn.execute(update(users).where(_c.name == name).values(disabled_at=at))

    def set_password(self, name: str, password_hash: str) -> None:
        self._conn.execute(update(users).where(_c.name == name).values(password_hash=password_hash))

    def password_hash(self, name: str) -> str | None:
        """The password hash of an enabled account, its row share-locked to the end of
        the transaction (PostgreSQL; SQLite has one writer anyway): a sign-in that
        re-reads it before adding a session is thus ordered with a concurrent disable
        or password change, which deletes the account's sessions after it commits."""
        found: str | None = self._conn.execute(
            select(_c.password_hash)
            .where(_c.name == name, _c.disabled_at.is_(None))
            .with_for_update(read=True)
        ).scalar()
        return found

    def add_session(
        self, id_hash: str, name: str, created_at: datetime, expires_at: datetime
    ) -> None:
        user_id = select(_c.id).where(_c.name == name).scalar_subquery()
        self._conn.execute(
            insert(staff_sessions).values(
                id_hash=id_hash, user_id=user_id, created_at=created_at, expires_at=expires_at
            )
        )

    def session_user(self, id_hash: str, now: datetime) -> UserRecord | None:
        s = staff_sessions.c
        row = self._conn.execute(
            select(*_RECORD)
            .join_from(staff_sessions, users, s.user_id == _c.id)
            .where(s.id_hash == id_hash, s.expires_at > now, _c.disabled_at.is_(None))
        ).first()
        return _record(row) if row else None

    def delete_session(self, id_hash: str) -> None:
        self._conn.execute(delete(staff_sessions).where(staff_sessions.c.id_hash == id_hash))

    def delete_sessions(self, name: str) -> None:
        user_id = select(_c.id).where(_c.name == name).scalar_subquery()
        self._conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user_id))

    def delete_expired_sessions(self, now: datetime) -> None:
        self._conn.execute(delete(staff_sessions).where(staff_sessions.c.expires_at <= now))
