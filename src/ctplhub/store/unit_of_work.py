"""The SQL unit of work: one connection, one transaction, one commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import Connection, Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from ctplhub.services.ports import (
    EventRepository,
    InsurerRepository,
    PolicyRepository,
    RetryableConflict,
    UserRepository,
)
from ctplhub.store.repositories import (
    SqlEventRepository,
    SqlInsurerRepository,
    SqlPolicyRepository,
    SqlUserRepository,
)
from ctplhub.store.tables import request_nonces


class SqlUnitOfWork:
    events: EventRepository
    policies: PolicyRepository
    insurers: InsurerRepository
    users: UserRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        self._conn = self._engine.connect()
        self._conn.begin()
        self.events = SqlEventRepository(self._conn)
        self.policies = SqlPolicyRepository(self._conn)
        self.insurers = SqlInsurerRepository(self._conn)
        self.users = SqlUserRepository(self._conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            self._conn.rollback()  # a no-op after commit; undoes everything otherwise
        finally:
            self._conn.close()
            self._conn = None
        if isinstance(exc, IntegrityError):
            # A concurrent writer inserted the same key between our read and our write.
            raise RetryableConflict(str(exc.orig)) from exc

    def commit(self) -> None:
        assert self._conn is not None
        self._conn.commit()


class SqlNonceStore:
    """Nonces in the database, shared by every API process (DESIGN §4)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._inserts = 0

    def remember(self, key_id: str, nonce: str, now: datetime, ttl_s: int) -> bool:
        with self._engine.connect() as conn:
            try:
                conn.execute(insert(request_nonces).values(key_id=key_id, nonce=nonce, seen_at=now))
                self._inserts += 1
                if self._inserts % 500 == 1:  # prune now and then, not on every request
                    conn.execute(
                        delete(request_nonces).where(
                            request_nonces.c.seen_at < now - timedelta(seconds=2 * ttl_s)
                        )
                    )
                conn.commit()
            except IntegrityError:
                conn.rollback()
                return False
        return True
