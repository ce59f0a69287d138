"""Staff sign-in to the pages: a password, then a server-side session (DESIGN §1, §5).

The session id is the cookie's value and is kept only as its SHA-256, with the account
and an end. Each page request looks it up in the database joined to the account, so
signing out, disabling the account or changing its password ends it in every process
at once. The forms' anti-forgery token is derived from the session id (``csrf_of``):
nothing to store, and a page that shows it does not show the id.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.errors import Unauthenticated
from ctplhub.services.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class StaffSession:
    """Who is signed in, and the token their forms must carry."""

    user: str
    role: str
    csrf_token: str

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf_token, given)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: ``session_id`` goes into the cookie and is never stored."""

    session_id: str
    session: StaffSession
    expires_at: datetime


class StaffSessions:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        new_session_id: Callable[[], str],
        hash_id: Callable[[str], str],
        csrf_of: Callable[[str], str],
        password_matches: Callable[[str | None, str], bool],
        lifetime: timedelta = timedelta(hours=8),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_session_id = new_session_id
        self._hash_id = hash_id
        self._csrf_of = csrf_of
        self._password_matches = password_matches
        self._lifetime = lifetime

    def sign_in(self, name: str, password: str) -> SignedIn:
        """A session for ``name`` if ``password`` is its password and the account is
        enabled; else ``invalid_credentials``, the same for every reason."""
        name = name.strip()
        with self._uow() as uow:
            encoded = uow.users.password_hash(name) if name else None
        # Checked outside the transaction: Argon2 takes ~70 ms of CPU, no connection.
        if not self._password_matches(encoded, password):
            raise Unauthenticated("wrong user name or password", code="invalid_credentials")
        session_id, now = self._new_session_id(), self._clock()
        expires_at = now + self._lifetime
        with self._uow() as uow:
            uow.users.delete_expired_sessions(now)
            user = uow.users.get(name)
            if user is None or user.disabled_at is not None:  # disabled in the meantime
                raise Unauthenticated("wrong user name or password", code="invalid_credentials")
            uow.users.add_session(self._hash_id(session_id), name, now, expires_at)
            uow.commit()
        session = StaffSession(user.name, user.role, self._csrf_of(session_id))
        return SignedIn(session_id, session, expires_at)

    def session(self, session_id: str | None) -> StaffSession | None:
        """The signed-in account of a cookie's session id, or None (no cookie, unknown,
        ended, expired or the account disabled)."""
        if not session_id or len(session_id) > 128:
            return None
        with self._uow() as uow:
            user = uow.users.session_user(self._hash_id(session_id), self._clock())
        if user is None:
            return None
        return StaffSession(user.name, user.role, self._csrf_of(session_id))

    def sign_out(self, session_id: str) -> None:
        with self._uow() as uow:
            uow.users.delete_session(self._hash_id(session_id))
            uow.commit()
