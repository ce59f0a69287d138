"""The SQL unit of work: one connection, one transaction, one commit."""

from __future__ import annotations

from types import TracebackType
from typing import Self

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


class SqlTransaction:
    """One connection and one transaction, the repositories of a unit of work bound to
    it by ``_bind``: committed only by ``commit`` (STYLE.md: a use case commits once),
    rolled back otherwise; a unique-key race becomes ``RetryableConflict``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Self:
        self._conn = self._engine.connect()
        self._conn.begin()
        self._bind(self._conn)
        return self

    def _bind(self, conn: Connection) -> None:
        raise NotImplementedError

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


class SqlUnitOfWork(SqlTransaction):
    events: EventRepository
    policies: PolicyRepository
    insurers: InsurerRepository
    users: UserRepository
    ledger: LedgerRepository

    def _bind(self, conn: Connection) -> None:
        self.events = SqlEventRepository(conn)
        self.policies = SqlPolicyRepository(conn)
        self.insurers = SqlInsurerRepository(conn)
        self.users = SqlUserRepository(conn)
        self.ledger = SqlLedgerRepository(conn)
