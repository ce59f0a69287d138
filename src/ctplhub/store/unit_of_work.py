"""The SQL unit of work: one connection, one transaction, one commit."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ctplhub.services.ledger_ports import LedgerRepository
from ctplhub.services.ports import (
    EventRepository,
    InsurerRepository,
    PolicyRepository,
    RetryableConflict,
    UserRepository,
)
from ctplhub.store.repositories.events import SqlEventRepository
from ctplhub.store.repositories.insurers import SqlInsurerRepository
from ctplhub.store.repositories.ledger import SqlLedgerRepository
from ctplhub.store.repositories.policies import SqlPolicyRepository
from ctplhub.store.repositories.users import SqlUserRepository


class SqlUnitOfWork:
    events: EventRepository
    policies: PolicyRepository
    insurers: InsurerRepository
    users: UserRepository
    ledger: LedgerRepository

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
        self.ledger = SqlLedgerRepository(self._conn)
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
