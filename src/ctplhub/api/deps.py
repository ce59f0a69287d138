"""What the routers need, handed in by ``bootstrap`` (routers never build services)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.security.request_signing import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
)
from ctplhub.services.check_coverage import CheckCoverage
from ctplhub.services.insurers import Insurers
from ctplhub.services.report_events import ReportEvents
from ctplhub.services.users import Caller, Users
from ctplhub.services.verify_bulk import VerifyBulk


@dataclass(frozen=True)
class Limits:
    event_bytes: int
    batch_bytes: int
    batch_lines: int
    verify_items: int


@dataclass(frozen=True)
class AppServices:
    report_events: ReportEvents
    coverage: CheckCoverage
    verify: VerifyBulk
    insurers: Insurers
    users: Users
    signer: AnswerSigner
    ready: Callable[[], bool]
    limits: Limits
    open_resources: Callable[[], Awaitable[None]]
    close_resources: Callable[[], Awaitable[None]]


def services(request: Request) -> AppServices:
    found: AppServices = request.app.state.services
    return found


def signed_insurer(request: Request, body_digest: bytes) -> str:
    """Authenticate a signed insurer request (DESIGN §5.1); returns its insurer code."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raw_path = request.scope.get("raw_path")
    if isinstance(raw_path, bytes):  # the request target exactly as sent
        target = raw_path.decode("latin-1") + (
            "?" + request.scope["query_string"].decode("latin-1")
            if request.scope.get("query_string")
            else ""
        )
    headers = request.headers
    return services(request).insurers.authenticate(
        key_id=headers.get(HEADER_KEY),
        timestamp=headers.get(HEADER_TIMESTAMP),
        nonce=headers.get(HEADER_NONCE),
        signature=headers.get(HEADER_SIGNATURE),
        method=request.method,
        path=target,
        body_digest=body_digest,
    )


def bearer(request: Request, *roles: str) -> Caller:
    return services(request).users.authenticate(request.headers.get("authorization"), allowed=roles)
