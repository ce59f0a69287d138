"""Named accounts and their bearer tokens, kept only as SHA-256 (DESIGN §1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from ctplhub.services.ports import UserRecord
from ctplhub.store.tables import users


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def exists(self, name: str) -> bool:
        return (
            self._conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None
        )

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
