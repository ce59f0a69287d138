"""Use case: e-certificates of cover (DESIGN §6.1): issued to a verified owner, checked by
anyone who holds one.

A certificate is a small signed statement "this vehicle's CTPL policy covers it from …
to …", compact enough for one QR code and checkable offline against the JWKS. A
signature only proves what was true when it was made, so the check also gives the
registry's answer *now* for the policy's vehicle: a certificate of a policy surrendered
or cancelled since still carries a good signature, and the live status exposes it.

The certificate names the policy only masked (``policy_no_masked``), so the registry keeps
a row per certificate issued (``cert_id`` → insurer code and policy number) to find the
vehicle again (docs/DECISIONS.md, "E-certificates"). Signing and the token format are the
``CertificateSealing`` port's (``security/certificate_token.py``), shared with the
offline ``ctplhub cert verify``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Protocol

from ctplhub.domain.coverage import CoverageStatus, coverage_status
from ctplhub.domain.errors import Conflict, ValidationFailed
from ctplhub.domain.identifiers import Plate, mask_vin
from ctplhub.domain.instants import format_instant
from ctplhub.services.check_coverage import CheckCoverage, CoverageQuery, mask_policy_no
from ctplhub.services.ports import AccessLog, Clock, Reader, VehicleReader

ISSUE_PURPOSE = "certificate_issue"
"""The access log's purpose of an issue: the owner read the vehicle's cover."""
CHECK_PURPOSE = "certificate_verify"
"""The purpose of a check's live status: whoever holds the token read the cover."""
CHECKER = Reader("anonymous", "owner", CHECK_PURPOSE)
"""Who checks a certificate is not known; like an unverified look-up, an anonymous read
under the owner's role (the roles of DESIGN §1 name no other public caller)."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """The signed body of §6.1, every field the exact text that was signed (instants as
    RFC 3339 in Beijing time): reformatting any of them would break the signature."""

    cert_id: str
    kid: str
    plate: str
    vin_masked: str
    insurer_code: str
    policy_no_masked: str
    coverage_start: str
    coverage_end: str
    issued_at: str

    def body(self) -> dict[str, str]:
        """The object that is signed: the certificate without its signature."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


CERTIFICATE_FIELDS = tuple(f.name for f in fields(Certificate))


@dataclass(frozen=True, slots=True)
class SealedCertificate:
    """A certificate with its signature (standard padded base64, §3.1) and its token."""

    certificate: Certificate
    signature: str
    token: str


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """The registry's answer now for the certificate's vehicle, whichever insurer covers it."""

    status: CoverageStatus
    as_of: datetime

    @property
    def covered(self) -> bool:
        return self.status.covered


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    """``valid`` is the signature check; when it fails, nothing else is told."""

    valid: bool
    certificate: SealedCertificate | None
    live: LiveStatus | None


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """What the registry keeps of a certificate: enough to find its policy again."""

    cert_id: str
    insurer_code: str
    policy_no: str
    kid: str
    issued_at: datetime


class CertificateSealing(Protocol):
    """Signs certificates into tokens and opens tokens (``security/certificate_token.py``)."""

    @property
    def active_kid(self) -> str: ...

    def seal(self, certificate: Certificate) -> SealedCertificate: ...

    def open(self, token: object) -> tuple[SealedCertificate, bool]:
        """The certificate a token carries and whether its signature holds under the key
        its ``kid`` names (False for an unknown kid); ``ValidationFailed`` with code
        ``invalid_token`` when the token is not one at all."""
        ...


class CertificateRecords(Protocol):
    """The certificates issued (``store/repositories/certificates.py``); blocking calls."""

    def add(self, record: IssuedRecord) -> None: ...

    def vin_of(self, cert_id: str) -> str | None:
        """The VIN of the vehicle the certificate's policy is on, or None when the
        registry holds no such certificate (or no longer that policy)."""
        ...


class Certificates:
    # ``cert_id`` is the key of the registry's row and must never repeat: a UUID from the
    # operating system's generator, not ``new_answer_id``'s Mersenne Twister, which a
    # seeded ``random`` (a test, a library) would make repeat. An issue is rare enough.
    def __init__(
        self,
        coverage: CheckCoverage,
        reader: VehicleReader,
        records: CertificateRecords,
        sealing: CertificateSealing,
        clock: Clock,
        *,
        reminder_window: timedelta,
        access_log: AccessLog,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._coverage = coverage
        self._reader = reader
        self._records = records
        self._sealing = sealing
        self._clock = clock
        self._window = reminder_window
        self._access_log = access_log
        self._new_id = new_id

    async def issue(self, q: CoverageQuery, reader: Reader) -> SealedCertificate:
        """A certificate of the policy covering the vehicle now: a factor is required (a
        wrong one is ``404 not_found``), ``at`` is refused (a certificate is about now),
        and a vehicle not covered now is ``409 not_covered``. The read is access-logged
        as ``reader`` whether or not a certificate comes of it."""
        if q.at is not None:
            raise ValidationFailed(
                "a certificate is about cover now: at is not accepted",
                details=[{"field": "at", "problem": "Extra inputs are not permitted"}],
            )
        vehicle = await self._coverage.verified_vehicle(q)
        now = self._clock()
        self._access_log.record(reader, vehicle.vin, now)
        result = coverage_status(vehicle.policies, now, reminder_window=self._window)
        policy = result.current_policy
        if not result.status.covered or policy is None:
            raise Conflict(
                f"the vehicle is not covered now ({result.status.value}): no certificate",
                code="not_covered",
                details={"status": result.status.value},
            )
        interval = policy.interval
        certificate = Certificate(
            cert_id=self._new_id(),
            kid=self._sealing.active_kid,
            plate=Plate.parse(q.plate).display,
            vin_masked=mask_vin(vehicle.vin),
            insurer_code=policy.insurer_code,
            policy_no_masked=mask_policy_no(policy.policy_no),
            coverage_start=format_instant(policy.coverage_start),
            coverage_end=format_instant(interval[1] if interval else policy.coverage_end),
            issued_at=format_instant(now),
        )
        sealed = self._sealing.seal(certificate)
        record = IssuedRecord(
            certificate.cert_id, policy.insurer_code, policy.policy_no, certificate.kid, now
        )
        await asyncio.to_thread(self._records.add, record)
        return sealed

    def open(self, token: object) -> tuple[SealedCertificate, bool]:
        """The certificate a token carries and whether its signature holds; no live look-up
        and nothing recorded (drawing a token's QR code)."""
        return self._sealing.open(token)

    async def check(self, token: object, reader: Reader = CHECKER) -> CertificateCheck:
        """The signature check and, when it holds, the live status of the certificate's
        vehicle (None when the registry does not know the certificate)."""
        sealed, valid = self._sealing.open(token)
        if not valid:
            return CertificateCheck(False, None, None)
        vin = await asyncio.to_thread(self._records.vin_of, sealed.certificate.cert_id)
        if vin is None:
            return CertificateCheck(True, sealed, None)
        now = self._clock()
        snapshot = await self._reader.vehicles((), (vin,))
        vehicle = snapshot.by_vin(vin)
        if vehicle is not None:
            self._access_log.record(reader, vehicle.vin, now)
        policies = vehicle.policies if vehicle is not None else ()
        status = coverage_status(policies, now, reminder_window=self._window).status
        return CertificateCheck(True, sealed, LiveStatus(status, now))
