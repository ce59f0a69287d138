"""Policy events (DESIGN §2.4): parsing, normalisation, content identity and the
version rules that decide what an arriving event does.

An event carries the policy's whole state as of its version, so the registry only ever
needs each policy's highest version; lower versions are history.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from ctplhub.domain.errors import Conflict, PolicyClosed, ValidationFailed
from ctplhub.domain.identifiers import IdNumber, Plate, Vin
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.records import fast_init


class EventType(StrEnum):
    ISSUE = "issue"
    RENEW = "renew"
    ENDORSE = "endorse"
    SURRENDER = "surrender"
    CANCEL = "cancel"

    @property
    def is_final(self) -> bool:
        """Surrender and cancel close a policy: no later version may follow."""
        return self in (EventType.SURRENDER, EventType.CANCEL)


class VehicleType(StrEnum):
    PASSENGER_SMALL = "passenger_small"
    PASSENGER_LARGE = "passenger_large"
    TRUCK = "truck"
    TRAILER = "trailer"
    MOTORCYCLE = "motorcycle"
    TRACTOR = "tractor"
    SPECIAL = "special"


class UseNature(StrEnum):
    FAMILY = "family"
    NON_OPERATING = "non_operating"
    OPERATING = "operating"


class OwnerIdType(StrEnum):
    RESIDENT_ID = "resident_id"
    USCC = "uscc"
    OTHER = "other"


EVENT_FIELDS: tuple[str, ...] = (
    "insurer_code",
    "policy_no",
    "event_type",
    "version",
    "occurred_at",
    "plate",
    "vin",
    "vehicle_type",
    "use_nature",
    "owner_name",
    "owner_id_type",
    "owner_id_number",
    "owner_phone",
    "coverage_start",
    "coverage_end",
    "premium",
    "region_code",
    "prior_policy_no",
    "effective_at",
)
"""Every field an event may carry, in the order of a CSV header."""

OPTIONAL_FIELDS = frozenset({"owner_phone", "prior_policy_no", "effective_at"})

_INSURER_CODE = re.compile(r"^[A-Z0-9_]{2,20}$")
_POLICY_NO = re.compile(r"^[\x21-\x7e]{1,40}$")
_REGION_CODE = re.compile(r"^[1-9][0-9]{5}$")
_PHONE = re.compile(r"^\+?[0-9][0-9-]{4,19}$")
_PREMIUM = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,2})?$")
_MAX_VERSION = 2**31 - 1


def normalise_insurer_code(raw: object) -> str:
    if not isinstance(raw, str) or not _INSURER_CODE.match(raw.strip().upper()):
        raise ValidationFailed(
            "insurer_code must be 2-20 characters of A-Z, 0-9 and _",
            details={"field": "insurer_code"},
        )
    return raw.strip().upper()


@fast_init
@dataclass(frozen=True, slots=True)
class PolicyEvent:
    """One event on one policy, parsed and normalised."""

    insurer_code: str
    policy_no: str
    event_type: EventType
    version: int
    occurred_at: datetime
    plate: Plate
    vin: Vin
    vehicle_type: VehicleType
    use_nature: UseNature
    owner_name: str
    owner_id_type: OwnerIdType
    owner_id_number: IdNumber
    owner_phone: str | None
    coverage_start: datetime
    coverage_end: datetime
    premium: Decimal
    region_code: str
    prior_policy_no: str | None = None
    effective_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.insurer_code, self.policy_no, self.version)

    def canonical(self) -> tuple[str | None, ...]:
        """The normalised content, field by field in ``EVENT_FIELDS`` order: equal for
        events that mean the same thing (instants in UTC, so ``Z`` and ``+08:00`` spellings
        of one instant agree; premium to two decimals)."""
        return (
            self.insurer_code,
            self.policy_no,
            self.event_type.value,
            str(self.version),
            _utc_text(self.occurred_at),
            self.plate.value,
            self.vin.value,
            self.vehicle_type.value,
            self.use_nature.value,
            self.owner_name,
            self.owner_id_type.value,
            self.owner_id_number.value,
            self.owner_phone,
            _utc_text(self.coverage_start),
            _utc_text(self.coverage_end),
            f"{self.premium:.2f}",
            self.region_code,
            self.prior_policy_no,
            _utc_text(self.effective_at) if self.effective_at else None,
        )

    def content_hash(self) -> str:
        """SHA-256 of the canonical content; decides duplicate (same) versus conflict."""
        return content_hash_of(self.canonical())


def content_hash_of(canonical: tuple[str | None, ...]) -> str:
    """``PolicyEvent.content_hash`` of an event whose ``canonical()`` is at hand (ingest
    needs it twice: for this hash and for the ledger's entry).

    Fields are joined with the unit separator and an absent field is NUL: validation
    admits no control characters in any field, so the encoding is unambiguous (and
    several times cheaper than JSON on the ingest path).
    """
    text = "\x1f".join("\x00" if part is None else part for part in canonical)
    return hashlib.sha256(text.encode()).hexdigest()


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _enum(enum: type[StrEnum], raw: object, field: str) -> Any:
    try:
        if not isinstance(raw, str):
            raise ValueError(raw)
        return enum(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValidationFailed(
            f"{field} must be one of: {allowed}", details={"field": field}
        ) from None


def _text(raw: object, field: str, max_len: int) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed(f"{field} must be a non-empty string", details={"field": field})
    text = raw.strip()
    if not text.isprintable():
        raise ValidationFailed(f"{field} contains control characters", details={"field": field})
    if len(text) > max_len:
        raise ValidationFailed(
            f"{field} is longer than {max_len} characters", details={"field": field}
        )
    return text


def parse_event(raw: Mapping[str, Any], *, insurer_code: str | None = None) -> PolicyEvent:
    """Validate and normalise one event given as a JSON object (or a CSV row).

    ``insurer_code`` fills the field when the source (a CLI import) names the insurer;
    empty strings count as absent so that CSV rows and JSON behave alike.
    """
    if not isinstance(raw, Mapping):
        raise ValidationFailed("an event must be a JSON object")
    data = {k: v for k, v in raw.items() if not (v is None or v == "")}
    unknown = sorted(set(data) - set(EVENT_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"unknown field(s): {', '.join(map(str, unknown))}", details={"fields": unknown}
        )
    if insurer_code is not None:
        data.setdefault("insurer_code", insurer_code)
    missing = [f for f in EVENT_FIELDS if f not in OPTIONAL_FIELDS and f not in data]
    if missing:
        raise ValidationFailed(
            f"missing field(s): {', '.join(missing)}", details={"fields": missing}
        )

    event_type = _enum(EventType, data["event_type"], "event_type")
    version = data["version"]
    if isinstance(version, str) and version.isdigit():
        version = int(version)  # CSV carries every value as text
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= _MAX_VERSION
    ):
        raise ValidationFailed("version must be an integer >= 1", details={"field": "version"})

    policy_no = data["policy_no"]
    if not isinstance(policy_no, str) or not _POLICY_NO.match(policy_no.strip()):
        raise ValidationFailed(
            "policy_no must be 1-40 printable ASCII characters without spaces",
            details={"field": "policy_no"},
        )
    owner_id_type = _enum(OwnerIdType, data["owner_id_type"], "owner_id_type")
    phone = data.get("owner_phone")
    if phone is not None and (not isinstance(phone, str) or not _PHONE.match(phone.strip())):
        raise ValidationFailed(
            "owner_phone must be 5-20 digits, optionally with a leading + and dashes",
            details={"field": "owner_phone"},
        )
    premium_raw = data["premium"]
    if not isinstance(premium_raw, str) or not _PREMIUM.match(premium_raw.strip()):
        raise ValidationFailed(
            'premium must be a decimal string in CNY with at most 2 decimals, e.g. "950.00"',
            details={"field": "premium"},
        )
    try:
        premium = Decimal(premium_raw.strip())
    except InvalidOperation:  # pragma: no cover - the pattern above already excludes it
        raise ValidationFailed("premium is not a decimal", details={"field": "premium"}) from None
    region = data["region_code"]
    if not isinstance(region, str) or not _REGION_CODE.match(region.strip()):
        raise ValidationFailed(
            "region_code must be a 6-digit administrative division code",
            details={"field": "region_code"},
        )

    start = parse_instant(data["coverage_start"], "coverage_start")
    end = parse_instant(data["coverage_end"], "coverage_end")
    if end <= start:
        raise ValidationFailed(
            "coverage_end must be after coverage_start (the interval is [start, end))",
            details={"field": "coverage_end"},
        )
    effective_at = (
        parse_instant(data["effective_at"], "effective_at") if "effective_at" in data else None
    )
    if event_type is EventType.SURRENDER and effective_at is None:
        raise ValidationFailed(
            "a surrender needs effective_at", details={"fields": ["effective_at"]}
        )
    if event_type is not EventType.SURRENDER and effective_at is not None:
        raise ValidationFailed(
            "effective_at belongs only to a surrender", details={"field": "effective_at"}
        )
    prior = data.get("prior_policy_no")
    if prior is not None:
        prior = _text(prior, "prior_policy_no", 40)
    if event_type is EventType.RENEW and prior is None:
        raise ValidationFailed(
            "a renew names the policy it renews in prior_policy_no",
            details={"fields": ["prior_policy_no"]},
        )

    return PolicyEvent(
        insurer_code=normalise_insurer_code(data["insurer_code"]),
        policy_no=policy_no.strip(),
        event_type=event_type,
        version=version,
        occurred_at=parse_instant(data["occurred_at"], "occurred_at"),
        plate=Plate.parse(data["plate"]),
        vin=Vin.parse(data["vin"]),
        vehicle_type=_enum(VehicleType, data["vehicle_type"], "vehicle_type"),
        use_nature=_enum(UseNature, data["use_nature"], "use_nature"),
        owner_name=_text(data["owner_name"], "owner_name", 100),
        owner_id_type=owner_id_type,
        owner_id_number=IdNumber.parse(data["owner_id_number"], owner_id_type.value),
        owner_phone=phone.strip() if phone is not None else None,
        coverage_start=start,
        coverage_end=end,
        premium=premium,
        region_code=region.strip(),
        prior_policy_no=prior,
        effective_at=effective_at,
    )


class Outcome(StrEnum):
    """What an arriving event does to the registry."""

    HEAD = "head"  # becomes the policy's state
    HISTORY = "history"  # stored, but another version rules
    DUPLICATE = "duplicate"  # identical re-send: a no-op


@fast_init
@dataclass(frozen=True, slots=True)
class PolicyHead:
    """The version of a policy that rules it: its state (DESIGN §2.4)."""

    version: int
    event_type: EventType

    def outranked_by(self, version: int, event_type: EventType) -> bool:
        """Whether that version would rule instead of this one."""
        return state_rank(version, event_type) > state_rank(self.version, self.event_type)


def state_rank(version: int, event_type: EventType) -> tuple[int, int]:
    """The order in which versions rule a policy (DESIGN §2.4): a surrender or cancel
    outranks every other event, the lowest-versioned of them ruling; otherwise the highest
    version rules. So an event of a higher version that arrived before the cancel cannot
    outlive it, and the order of arrival never changes the state."""
    return (1, -version) if event_type.is_final else (0, version)


def decide(
    event: PolicyEvent, content_hash: str, same_version_hash: str | None, head: PolicyHead | None
) -> Outcome:
    """Apply the version rules of §2.4 to one arriving event.

    ``same_version_hash`` is the content hash already stored under the event's key, if
    any; ``head`` the policy's ruling version. Raises ``Conflict`` for the same key with
    other content and ``PolicyClosed`` for a version after a surrender or cancel.
    """
    if same_version_hash is not None:
        if same_version_hash == content_hash:
            return Outcome.DUPLICATE
        raise Conflict(
            f"policy {event.policy_no} version {event.version} is already stored with "
            "different content; send a new version to change a policy",
            details={"policy_no": event.policy_no, "version": event.version},
        )
    if head is None:
        return Outcome.HEAD
    if head.event_type.is_final and event.version > head.version:
        raise PolicyClosed(
            f"policy {event.policy_no} was closed by a {head.event_type.value} at version "
            f"{head.version}; a later version is not accepted",
            details={"policy_no": event.policy_no, "closed_by_version": head.version},
        )
    if head.outranked_by(event.version, event.event_type):
        return Outcome.HEAD
    return Outcome.HISTORY
