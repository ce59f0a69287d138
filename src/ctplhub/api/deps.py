"""What the routers need, handed in by ``bootstrap`` (routers never build services)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ctplhub.api.errors import REQUEST_ID
from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.security.request_signing import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
)
from ctplhub.security.throttle import Throttle
from ctplhub.services.access_log import OwnerAccessLog
from ctplhub.services.certificates import Certificates
from ctplhub.services.check_coverage import CheckCoverage
from ctplhub.services.insurers import Insurers
from ctplhub.services.ledger_proofs import LedgerProofs
from ctplhub.services.readiness import Readiness
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
    access_log: OwnerAccessLog  # an owner's listing of reads (DESIGN §5.3)
    # Wakes the access log's writer once an answer is sent whose many entries were queued
    # without waking it (``AccessLogWriter.record_many``: a bulk verify).
    flush_access_log: Callable[[], None]
    throttle: Throttle  # DESIGN §5.3 budgets: security/throttle.py
    readiness: Callable[[], Readiness]
    limits: Limits
    open_resources: Callable[[], Awaitable[None]]
    close_resources: Callable[[], Awaitable[None]]
    certificates: Certificates  # e-certificates (DESIGN §6.1)
    ledger: LedgerProofs  # the public ledger's reads (DESIGN §6)


def services(request: Request) -> AppServices:
    found: AppServices = request.app.state.services
    return found


def client_address(request: Request) -> str:
    """Whom the throttle counts (DESIGN §5.3): the peer's address. Behind a proxy, uvicorn
    puts the client's own there from X-Forwarded-For when it trusts the proxy
    (``FORWARDED_ALLOW_IPS``, default 127.0.0.1 and ::1; docs/DECISIONS.md)."""
    peer = request.client
    return peer.host if peer is not None else "unknown"


async def insurer_of(request: Request, body: bytes = b"") -> str:
    """The insurer code of a signed request (DESIGN §5.1) whose body is ``body`` (empty
    for a GET), checked off the event loop: the one way routers authenticate insurers."""
    digest = hashlib.sha256(body).digest()
    return await run_in_threadpool(signed_insurer, request, digest)


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


def request_id(request: Request) -> str | None:
    """The request's id (``RequestObservability``), for the access log's entries."""
    found = request.scope.get(REQUEST_ID)
    return found if isinstance(found, str) else None


def bearer(request: Request, *roles: str) -> Caller:
    return services(request).users.authenticate(request.headers.get("authorization"), allowed=roles)
