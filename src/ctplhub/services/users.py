"""Named accounts with roles and bearer tokens (DESIGN §1).

A token is shown once, kept only as its SHA-256 and ends by itself after
``token_ttl`` (30 days by default). Issuing a new one replaces the old one; disabling an
account replaces it with one nobody was shown and ends the account's page sessions. All
of it lives in the database and every request reads it there, so a change holds in every
server process from its commit on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.errors import (
    NotFound,
    RoleNotAllowed,
    Unauthenticated,
    UserExists,
    ValidationFailed,
)
from ctplhub.domain.instants import format_instant
from ctplhub.services.ports import Clock, UnitOfWork, UnitOfWorkFactory, UserRecord

ROLES = ("police", "regulator", "agent", "admin", "auditor", "registrar")
MIN_PASSWORD = 12  # NIST SP 800-63B asks at least 8; staff reach personal data
MAX_PASSWORD = 256


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new bearer token: ``token`` is shown once and never stored."""

    user: str
    role: str
    token: str
    expires_at: datetime


class Users:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        new_token: Callable[[], str],
        hash_token: Callable[[str], str],
        hash_password: Callable[[str], str],
        token_ttl: timedelta = timedelta(days=30),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_token = new_token
        self._hash_token = hash_token
        self._hash_password = hash_password
        self._token_ttl = token_ttl

    def add(self, name: str, role: str) -> str:
        """Create an account; returns its token (see :meth:`add_account`)."""
        return self.add_account(name, role).token

    def add_account(self, name: str, role: str) -> IssuedToken:
        """Create an account; the token is shown once and only its hash is kept."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationFailed("a user name is 1-100 characters")
        if role not in ROLES:
            raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
        token, now = self._new_token(), self._clock()
        expires_at = now + self._token_ttl
        with self._uow() as uow:
            if uow.users.exists(name):
                raise UserExists(f"user {name} already exists")
            uow.users.add(name, role, self._hash_token(token), expires_at, now)
            uow.commit()
        return IssuedToken(name, role, token, expires_at)

    def list(self) -> list[UserRecord]:
        with self._uow() as uow:
            return uow.users.all()

    def issue_token(self, name: str) -> IssuedToken:
        """A new token for ``name``; the old one stops working at the commit."""
        token, now = self._new_token(), self._clock()
        with self._uow() as uow:
            user = _existing(uow, name)
            if user.disabled_at is not None:
                raise ValidationFailed(f"user {name} is disabled; enable it first")
            uow.users.set_token(name, self._hash_token(token), now + self._token_ttl)
            uow.commit()
        return IssuedToken(name, user.role, token, now + self._token_ttl)

    def disable(self, name: str) -> UserRecord:
        """End the account's token and page sessions; it can no longer sign in."""
        now = self._clock()
        with self._uow() as uow:
            user = _existing(uow, name)
            if user.disabled_at is None:
                uow.users.set_disabled(name, now)
            # A token nobody was shown: enabling the account again does not revive the
            # old one, which may be why it was disabled.
            uow.users.set_token(name, self._hash_token(self._new_token()), now)
            uow.users.delete_sessions(name)
            uow.commit()
            return _existing(uow, name)

    def enable(self, name: str) -> UserRecord:
        """Let the account sign in again; it needs a new token (:meth:`issue_token`) and
        a new sign-in: a page session left from before the disable (one that slipped in
        beside it) is deleted, never revived."""
        with self._uow() as uow:
            _existing(uow, name)
            uow.users.set_disabled(name, None)
            uow.users.delete_sessions(name)
            uow.commit()
            return _existing(uow, name)

    def set_password(self, name: str, password: str) -> None:
        """Set the staff page password; signs the account out of every page session."""
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise ValidationFailed(f"a password is {MIN_PASSWORD}-{MAX_PASSWORD} characters long")
        encoded = self._hash_password(password)
        with self._uow() as uow:
            _existing(uow, name)
            uow.users.set_password(name, encoded)
            uow.users.delete_sessions(name)
            uow.commit()

    def authenticate(self, authorization: str | None, *, allowed: tuple[str, ...]) -> Caller:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated(
                "this call needs Authorization: Bearer <token>", code="missing_token"
            )
        token = authorization[7:].strip()
        with self._uow() as uow:
            user = uow.users.by_token_hash(self._hash_token(token))
        if user is None:
            raise Unauthenticated("unknown, replaced or disabled token", code="invalid_token")
        if user.token_expires_at <= self._clock():
            raise Unauthenticated(
                f"the token expired at {format_instant(user.token_expires_at)}; "
                "ask an administrator for a new one",
                code="invalid_token",
            )
        return authorize(Caller(user.name, user.role), allowed)


def authorize(caller: Caller, allowed: tuple[str, ...]) -> Caller:
    """``caller`` if its role is one of ``allowed``, else ``403 role_not_allowed``."""
    if caller.role not in allowed:
        raise RoleNotAllowed(f"role {caller.role} may not do this; allowed: {', '.join(allowed)}")
    return caller


def _existing(uow: UnitOfWork, name: str) -> UserRecord:
    user = uow.users.get(name)
    if user is None:
        raise NotFound(f"no user named {name}")
    return user
