"""Use cases around insurers: registration, certification (§5.2), request
authentication (§5.1), heartbeats and sync health (§2.6, §3)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.errors import (
    InsurerExists,
    InsurerMismatch,
    InsurerNotCertified,
    InvalidInstant,
    Unauthenticated,
    UnknownInsurer,
    ValidationFailed,
)
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.policy import normalise_insurer_code
from ctplhub.services.ports import (
    Clock,
    InsurerKeyRecord,
    InsurerRecord,
    NonceStore,
    NonceVerdict,
    PersonalData,
    UnitOfWorkFactory,
)

STATUSES = ("certified", "suspended", "revoked")
_CLAIMS_PHONE = re.compile(r"\+?[0-9][0-9-]{2,19}")
MAX_SKEW_S = 300
MIN_NONCE_LEN = 16


@dataclass(frozen=True, slots=True)
class NewInsurer:
    insurer_code: str
    key_id: str
    secret: str


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """An insurer's sync health (§3 ``GET /v1/insurers/{code}/sync``)."""

    insurer_code: str
    status: str  # its certification
    last_sync_at: datetime | None
    lag_s: float | None
    stale: bool
    accepted_24h: int
    rejected_24h: int


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    insurer_code: str
    key_id: str
    secret: str
    old_keys_until: datetime  # when the keys in ``old_key_ids`` stop working
    old_key_ids: tuple[str, ...]


MAX_OVERLAP = timedelta(days=90)


def _in_force(key: InsurerKeyRecord, now: datetime) -> bool:
    return key.valid_until is None or now < key.valid_until


def secret_aad(key_id: str) -> bytes:
    return f"insurer-key|{key_id}".encode()


class Insurers:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        personal: PersonalData,
        nonces: NonceStore,
        clock: Clock,
        *,
        stale_after: timedelta,
        signature_check: Callable[[str, str, str, str, str, bytes, str], bool],
        timestamp_fresh: Callable[[str, float], bool],
        new_key_id: Callable[[str], str],
        new_secret: Callable[[], str],
    ) -> None:
        self._uow = uow
        self._personal = personal
        self._nonces = nonces
        self._clock = clock
        self._stale_after = stale_after
        self._signature_matches = signature_check
        self._timestamp_fresh = timestamp_fresh
        self._new_key_id = new_key_id
        self._new_secret = new_secret

    # -- administration -------------------------------------------------------------
    def add(
        self, code: str, name: str, *, actor: str, claims_phone: str | None = None
    ) -> NewInsurer:
        """Register a certified insurer; ``claims_phone`` is the number police give the
        other party of an accident (DESIGN §11), shown as given."""
        code = normalise_insurer_code(code)
        if not name.strip():
            raise ValidationFailed("an insurer needs a name")
        if claims_phone is not None:
            claims_phone = claims_phone.strip()
            if not _CLAIMS_PHONE.fullmatch(claims_phone):
                raise ValidationFailed(
                    "claims_phone must be 3-20 digits, optionally with a leading + and dashes "
                    "(e.g. 95518 or 400-800-1234)",
                    details={"field": "claims_phone"},
                )
        now = self._clock()
        key_id, secret = self._new_key_id(code), self._new_secret()
        with self._uow() as uow:
            if uow.insurers.get(code) is not None:
                raise InsurerExists(f"insurer {code} already exists")
            uow.insurers.add(code, name.strip(), actor, now, claims_phone)
            uow.insurers.add_key(
                key_id, code, self._personal.encrypt(secret, aad=secret_aad(key_id)), now
            )
            uow.commit()
        return NewInsurer(code, key_id, secret)

    def rotate_secret(self, code: str, *, overlap: timedelta) -> RotatedSecret:
        """A new API key and secret; the insurer's older keys keep working until
        ``overlap`` from now, then answer ``401 unknown_key`` (DESIGN §8). The database
        holds both, so every process honours the change at once."""
        if overlap < timedelta(0) or overlap > MAX_OVERLAP:
            raise ValidationFailed(f"the overlap must be between 0 and {MAX_OVERLAP.days} days")
        code = normalise_insurer_code(code)
        now = self._clock()
        key_id, secret = self._new_key_id(code), self._new_secret()
        with self._uow() as uow:
            if uow.insurers.get(code) is None:
                raise UnknownInsurer(f"no insurer {code}")
            ended = uow.insurers.end_keys(code, now + overlap)
            uow.insurers.add_key(
                key_id, code, self._personal.encrypt(secret, aad=secret_aad(key_id)), now
            )
            uow.commit()
        return RotatedSecret(code, key_id, secret, now + overlap, tuple(ended))

    def set_status(self, code: str, status: str, *, reason: str, actor: str) -> None:
        if status not in STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}")
        if not reason.strip():
            raise ValidationFailed("a certification change needs a reason")
        code = normalise_insurer_code(code)
        with self._uow() as uow:
            if uow.insurers.get(code) is None:
                raise UnknownInsurer(f"no insurer {code}")
            uow.insurers.set_status(code, status, reason.strip(), actor, self._clock())
            uow.commit()

    def list(self) -> list[InsurerRecord]:
        with self._uow() as uow:
            return uow.insurers.all()

    def get(self, code: str) -> InsurerRecord:
        code = normalise_insurer_code(code)
        with self._uow() as uow:
            record = uow.insurers.get(code)
        if record is None:
            raise UnknownInsurer(f"no insurer {code}; register it with `ctplhub insurer add`")
        return record

    # -- authentication (§5.1) ------------------------------------------------------
    def authenticate(
        self,
        *,
        key_id: str | None,
        timestamp: str | None,
        nonce: str | None,
        signature: str | None,
        method: str,
        path: str,
        body_digest: bytes,
    ) -> str:
        """Check a signed request; returns the caller's insurer code."""
        if not (key_id and timestamp and nonce and signature):
            raise Unauthenticated(
                "signed request headers missing: X-CTPL-Key, X-CTPL-Timestamp, "
                "X-CTPL-Nonce and X-CTPL-Signature are all required",
                code="missing_signature",
            )
        with self._uow() as uow:
            key = uow.insurers.key(key_id)
            insurer = uow.insurers.get(key.insurer_code) if key else None
        if key is None or insurer is None or not _in_force(key, self._clock()):
            raise Unauthenticated("unknown API key", code="unknown_key")
        if not self._timestamp_fresh(timestamp, time.time()):
            raise Unauthenticated(
                f"X-CTPL-Timestamp must be unix seconds within {MAX_SKEW_S} s of the server clock",
                code="stale_timestamp",
            )
        if len(nonce) < MIN_NONCE_LEN or len(nonce) > 128:
            raise Unauthenticated(
                f"X-CTPL-Nonce must be {MIN_NONCE_LEN} to 128 random characters",
                code="bad_nonce",
            )
        secret = self._personal.decrypt(key.secret_enc, aad=secret_aad(key.key_id))
        if not self._signature_matches(
            secret, method, path, timestamp, nonce, body_digest, signature
        ):
            raise Unauthenticated("the signature does not match", code="bad_signature")
        # Only a correctly signed request may burn a nonce, so strangers cannot pre-empt one.
        verdict = self._nonces.remember(
            key.key_id, nonce, self._clock(), MAX_SKEW_S, signed_at=int(timestamp)
        )
        if verdict is NonceVerdict.SEEN:
            raise Unauthenticated("this nonce was already used", code="replayed_nonce")
        if verdict is NonceVerdict.BEFORE_MEMORY:
            # The nonce store lost its memory (Redis restarted) after this was signed: a
            # replay cannot be told from a first sending. Signed again now, it passes.
            raise Unauthenticated(
                "X-CTPL-Timestamp is older than the server's replay memory; sign the "
                "request again with the current time",
                code="stale_timestamp",
            )
        if insurer.status != "certified":
            raise InsurerNotCertified(
                f"insurer {insurer.code} is {insurer.status} ({insurer.status_reason})",
                details={"status": insurer.status},
            )
        return insurer.code

    # -- freshness ------------------------------------------------------------------
    def heartbeat(self, code: str, *, caller: str, at: object = None) -> SyncStatus:
        self._own(code, caller)
        now = self._clock()
        instant = now if at is None else parse_instant(at, "at")
        if instant > now + timedelta(seconds=MAX_SKEW_S):
            raise InvalidInstant("a heartbeat cannot vouch for the future", details={"field": "at"})
        with self._uow() as uow:
            uow.insurers.touch_sync(code, instant)
            uow.commit()
        return self.sync(code)

    def sync(self, code: str, *, caller: str | None = None) -> SyncStatus:
        """Sync health; ``caller``, when an insurer asks, must be that insurer."""
        if caller is not None:
            self._own(code, caller)
        now = self._clock()
        with self._uow() as uow:
            insurer = uow.insurers.get(code)
            if insurer is None:
                raise UnknownInsurer(f"no insurer {code}")
            activity = uow.insurers.activity_since(code, now - timedelta(hours=24))
        last = insurer.last_sync_at
        lag = (now - last).total_seconds() if last else None
        return SyncStatus(
            insurer_code=insurer.code,
            status=insurer.status,
            last_sync_at=last,
            lag_s=round(lag, 3) if lag is not None else None,
            stale=lag is None or lag > self._stale_after.total_seconds(),
            accepted_24h=activity.accepted,
            rejected_24h=activity.rejected,
        )

    @staticmethod
    def _own(code: str, caller: str) -> None:
        if code != caller:
            raise InsurerMismatch(f"this key belongs to insurer {caller}")
