"""Staff sign-in to the pages: a password, then a server-side session (DESIGN §1, §5).

The session id is the cookie's value and is kept only as its SHA-256, with the account
and an end. Each page request looks it up in the database joined to the account, so
signing out, disabling the account or changing its password ends it in every process
at once. The forms' anti-forgery token is derived from the session id (``csrf_of``):
nothing to store, and a page that shows it does not show the id.

The account name is normalised once, by :func:`sign_in_name`, before anything else sees
it: the caller throttles that exact string and :meth:`StaffSessions.sign_in` looks up
exactly the string it is given (no second trim), so that no spelling of a name gets a
budget of its own. The password is checked outside any transaction (Argon2 takes ~70 ms
of CPU); the transaction that adds the session reads the account again, locked against a
concurrent change, and refuses when it was disabled or its password changed meanwhile.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.errors import Unauthenticated
from ctplhub.services.ports import Clock, UnitOfWorkFactory

MAX_NAME = 100  # the longest account name ``Users.add_account`` accepts


def sign_in_name(raw: str) -> str | None:
    """The account name a sign-in form gave, trimmed; None when no account can have it
    (empty, or longer than :data:`MAX_NAME` once trimmed: refused, never cut, since a cut
    name would be a different string from the one looked up)."""
    name = raw.strip()
    return name if 0 < len(name) <= MAX_NAME else None


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
        enabled; else ``invalid_credentials``, the same for every reason. ``name`` is
        looked up as given: pass it through :func:`sign_in_name` first (a name that is not
        its own normal form is refused)."""
        if sign_in_name(name) != name:
            raise Unauthenticated("wrong user name or password", code="invalid_credentials")
        with self._uow() as uow:
            encoded = uow.users.password_hash(name)
        # Checked outside the transaction: Argon2 takes ~70 ms of CPU, no connection.
        if not self._password_matches(encoded, password):
            raise Unauthenticated("wrong user name or password", code="invalid_credentials")
        session_id, now = self._new_session_id(), self._clock()
        expires_at = now + self._lifetime
        with self._uow() as uow:
            # The session is written first, so that the transaction holds the write lock
            # (SQLite reads outside one otherwise); then the account is read again, its
            # row share-locked to the commit (PostgreSQL). A disable or a new password
            # committed during the check above refuses the sign-in here (rolled back);
            # one committed after this waits for the commit and then deletes the session
            # with the account's others.
            uow.users.add_session(self._hash_id(session_id), name, now, expires_at)
            user = uow.users.get(name)
            if user is None or uow.users.password_hash(name) != encoded:
                raise Unauthenticated("wrong user name or password", code="invalid_credentials")
            uow.users.delete_expired_sessions(now)
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
