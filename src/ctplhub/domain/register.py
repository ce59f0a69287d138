"""The vehicle register (车管所) as the registry sees it (DESIGN §11).

The traffic-management system feeds lines ``{"vin", "plate", "vehicle_type",
"region_code", "status", "as_of"}``. Lines are history: a vehicle's register status at
``t`` is that of its line with the latest ``as_of`` up to ``t``, so an older line is
stored, never refused, and the order of arrival never changes an answer. A line is
identified by its VIN and ``as_of``: the same line again is a duplicate, another content
under that key a conflict (decided by ``content_hash``, equal after normalising, so
``Z`` and ``+08:00`` for one instant, or ``苏E·12345`` and ``苏e12345``, are one line).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.identifiers import Plate, Vin
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.policy import VehicleType
from ctplhub.domain.records import fast_init

REGISTER_FIELDS: tuple[str, ...] = (
    "vin",
    "plate",
    "vehicle_type",
    "region_code",
    "status",
    "as_of",
)
"""Every field a register line carries, in the order of a CSV header."""

_REGION_CODE = re.compile(r"[1-9][0-9]{5}")
REGION_PREFIX = re.compile(r"[0-9]{0,6}")


class RegisterStatus(StrEnum):
    REGISTERED = "registered"
    SCRAPPED = "scrapped"  # 报废
    DEREGISTERED = "deregistered"  # 注销


@fast_init
@dataclass(frozen=True, slots=True)
class RegisterLine:
    """One register line, parsed and normalised: ``plate`` in compact canonical form."""

    vin: str
    plate: str
    vehicle_type: str
    region_code: str
    status: RegisterStatus
    as_of: datetime

    @property
    def content_hash(self) -> str:
        """The line's identity for duplicate and conflict checks (hex SHA-256)."""
        text = "\x1f".join(
            (
                self.vin,
                self.plate,
                self.vehicle_type,
                self.region_code,
                self.status.value,
                self.as_of.astimezone(UTC).isoformat(),
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _field(data: Mapping[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is None or value == "":
        raise ValidationFailed(f"missing field: {name}", details={"fields": [name]})
    return value


def parse_register_line(raw: Mapping[str, Any]) -> RegisterLine:
    """Validate and normalise one line given as a JSON object (or a CSV row)."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("a register line must be a JSON object")
    unknown = sorted(str(k) for k in raw if k not in REGISTER_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"unknown field(s): {', '.join(unknown)}", details={"fields": unknown}
        )
    missing = [f for f in REGISTER_FIELDS if raw.get(f) is None or raw.get(f) == ""]
    if missing:
        raise ValidationFailed(
            f"missing field(s): {', '.join(missing)}", details={"fields": missing}
        )
    region = _field(raw, "region_code")
    if not isinstance(region, str) or not _REGION_CODE.fullmatch(region.strip()):
        raise ValidationFailed(
            "region_code must be six digits, not starting with 0 (e.g. 320505)",
            details={"field": "region_code"},
        )
    return RegisterLine(
        vin=Vin.parse(_field(raw, "vin")).value,
        plate=Plate.parse(_field(raw, "plate")).value,
        vehicle_type=_choice(VehicleType, raw["vehicle_type"], "vehicle_type"),
        region_code=region.strip(),
        status=RegisterStatus(_choice(RegisterStatus, raw["status"], "status")),
        as_of=parse_instant(raw["as_of"], "as_of"),
    )


def _choice(enum: type[StrEnum], raw: object, field: str) -> str:
    allowed = [member.value for member in enum]
    if isinstance(raw, str) and raw.strip() in allowed:
        return raw.strip()
    raise ValidationFailed(
        f"{field} must be one of: {', '.join(allowed)}", details={"field": field}
    )


def register_state_at(lines: Iterable[RegisterLine], at: datetime) -> RegisterLine | None:
    """The line that gives the vehicle's register status at ``at``: the latest ``as_of``
    up to ``at``; None when the register said nothing about it by then."""
    best: RegisterLine | None = None
    for line in lines:
        if line.as_of <= at and (best is None or line.as_of > best.as_of):
            best = line
    return best


def registered_in(
    vins: Iterable[str], lines: Mapping[str, Sequence[RegisterLine]], at: datetime, prefix: str
) -> dict[str, RegisterLine]:
    """Of ``vins``, those whose line at ``at`` says ``registered`` in a region under
    ``prefix``, with that line (the vehicles the uninsured list and the match consider)."""
    ruling: dict[str, RegisterLine] = {}
    for vin in vins:
        line = register_state_at(lines.get(vin, ()), at)
        if (
            line is not None
            and line.status is RegisterStatus.REGISTERED
            and line.region_code.startswith(prefix)
        ):
            ruling[vin] = line
    return ruling


def region_prefix(raw: object) -> str:
    """A ``region_prefix`` of §11: up to six digits (empty: the whole country)."""
    if isinstance(raw, str) and REGION_PREFIX.fullmatch(raw):
        return raw
    raise ValidationFailed(
        "region_prefix must be 0-6 digits of an administrative division code, e.g. 3205",
        details=[{"field": "region_prefix", "problem": "0-6 digits"}],
    )
