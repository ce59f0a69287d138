"""Domain errors: each carries a stable ``code`` and the data a caller needs.

Services raise these; the API maps them to HTTP in one table (``api/errors.py``), the
CLI prints them. They never know about HTTP themselves.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: ``code`` is the stable ``error.code`` of DESIGN §3."""

    code = "domain_error"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class ValidationFailed(DomainError):
    """Input that breaks a rule of §2 (generic: missing field, wrong type, bad enum)."""

    code = "validation_failed"


class InvalidPlate(ValidationFailed):
    code = "invalid_plate"


class InvalidVin(ValidationFailed):
    code = "invalid_vin"


class InvalidIdNumber(ValidationFailed):
    code = "invalid_id_number"


class InvalidInstant(ValidationFailed):
    code = "invalid_instant"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """Same idempotency key, different content."""

    code = "conflict"


class PolicyClosed(Conflict):
    """A later version of a surrendered or cancelled policy."""

    code = "policy_closed"


class DisputeClosed(Conflict):
    """Resolving a dispute that is no longer open (DESIGN §10): it was resolved already."""

    code = "dispute_closed"


class UnknownInsurer(DomainError):
    code = "unknown_insurer"


class InsurerNotCertified(DomainError):
    code = "insurer_not_certified"


class Forbidden(DomainError):
    """The caller is known but may not do this (403); subclasses name why."""

    code = "forbidden"


class InsurerMismatch(Forbidden):
    """An insurer's key used for another insurer's events or endpoints."""

    code = "insurer_mismatch"


class RoleNotAllowed(Forbidden):
    code = "role_not_allowed"


class AlreadyExists(DomainError):
    """Registering what is already registered (409); subclasses name what."""

    code = "exists"


class InsurerExists(AlreadyExists):
    code = "insurer_exists"


class UserExists(AlreadyExists):
    code = "user_exists"


class Unauthenticated(DomainError):
    """A request whose credentials are missing or wrong (401); ``code`` says which check
    (``missing_signature``, ``unknown_key``, ... ``missing_token``, ``invalid_token``)."""

    code = "unauthenticated"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class MalformedInput(DomainError):
    """A body or line that is not valid JSON/CSV at all."""

    code = "malformed_json"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class RateLimited(DomainError):
    """Too many attempts (DESIGN §5.3): ``retry_after_s`` is how many whole seconds to wait
    before the budget that refused this one has room again (the ``Retry-After`` header)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s
