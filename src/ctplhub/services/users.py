"""Named accounts with roles and bearer tokens (DESIGN §1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ctplhub.domain.errors import RoleNotAllowed, Unauthenticated, UserExists, ValidationFailed
from ctplhub.services.ports import Clock, UnitOfWorkFactory

ROLES = ("police", "regulator", "agent", "admin", "auditor")


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: str


class Users:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        new_token: Callable[[], str],
        hash_token: Callable[[str], str],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_token = new_token
        self._hash_token = hash_token

    def add(self, name: str, role: str) -> str:
        """Create an account; the token is shown once and only its hash is kept."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationFailed("a user name is 1-100 characters")
        if role not in ROLES:
            raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
        token = self._new_token()
        with self._uow() as uow:
            if uow.users.exists(name):
                raise UserExists(f"user {name} already exists")
            uow.users.add(name, role, self._hash_token(token), self._clock())
            uow.commit()
        return token

    def authenticate(self, authorization: str | None, *, allowed: tuple[str, ...]) -> Caller:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated(
                "this call needs Authorization: Bearer <token>", code="missing_token"
            )
        token = authorization[7:].strip()
        with self._uow() as uow:
            user = uow.users.by_token_hash(self._hash_token(token))
        if user is None:
            raise Unauthenticated("unknown or disabled token", code="invalid_token")
        if user.role not in allowed:
            raise RoleNotAllowed(f"role {user.role} may not do this; allowed: {', '.join(allowed)}")
        return Caller(user.name, user.role)
