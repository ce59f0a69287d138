"""Use case: after an accident, the police ask which insurer covered the other vehicle at
that instant, and whom to call (DESIGN §11 "Accident look-up").

The vehicle is the one the plate meant at ``at`` (§2.5's plate rule, through the coverage
answers' own read path); its cover at ``at`` is §2.5's. The answer names the insurer of
the policy covering ``at`` (the one ending last, §2.5 ``current_policy``), its name and
claims phone (``ctplhub insurer add … --claims-phone``) and the policy number masked.

Every look-up that finds a vehicle is written to the access log as read by the officer,
purpose ``accident``, with the case reference and the reason code in the row. A plate no
vehicle carries at ``at`` answers ``covered: false`` with nulls, as bulk verify answers
``NO_RECORD`` (§3): at a roadside the officer needs "no cover on record", not an error;
no vehicle's data was read, so nothing is logged (docs/DECISIONS.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from ctplhub.domain.coverage import coverage_status
from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.identifiers import Plate
from ctplhub.domain.instants import parse_instant
from ctplhub.services.check_coverage import mask_policy_no
from ctplhub.services.ports import AccessLog, Clock, Reader, VehicleReader

PURPOSE = "accident"
_REFERENCE = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
_REASON = re.compile(r"[a-z][a-z0-9_]{1,39}")
_FIELDS = ("plate", "at", "accident_ref", "reason")


@dataclass(frozen=True, slots=True)
class AccidentAnswer:
    covered: bool
    insurer_code: str | None
    insurer_name: str | None
    claims_phone: str | None
    policy_no_masked: str | None


@dataclass(frozen=True, slots=True)
class AccidentQuery:
    plate: Plate
    at_text: str
    accident_ref: str
    reason: str


def accident_query(body: dict[str, object]) -> AccidentQuery:
    """The body of ``POST /v1/accidents/lookup``, checked; values are never echoed."""
    problems = [
        {"field": k, "problem": "Extra inputs are not permitted"} for k in body if k not in _FIELDS
    ]
    problems += [{"field": k, "problem": "Field required"} for k in _FIELDS if k not in body]
    if problems:
        raise ValidationFailed("the request is not valid", details=problems)
    reference = body["accident_ref"]
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference.strip()):
        raise ValidationFailed(
            "accident_ref must be the case reference, 1-64 characters without control characters",
            details=[{"field": "accident_ref", "problem": "1-64 printable characters"}],
        )
    reason = body["reason"]
    if not isinstance(reason, str) or not _REASON.fullmatch(reason):
        raise ValidationFailed(
            "reason must be a snake_case reason code such as collision or hit_and_run",
            details=[
                {"field": "reason", "problem": "2-40 of a-z, 0-9 and _, starting with a letter"}
            ],
        )
    at = body["at"]
    parse_instant(at, "at")  # refused here, before any read
    assert isinstance(at, str)
    return AccidentQuery(Plate.parse(body["plate"]), at, reference.strip(), reason)


class AccidentLookup:
    def __init__(
        self,
        reader: VehicleReader,
        clock: Clock,
        *,
        access_log: AccessLog,
        reminder_window: timedelta,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._access_log = access_log
        self._window = reminder_window

    async def lookup(
        self, query: AccidentQuery, *, officer: str, role: str, request_id: str | None
    ) -> AccidentAnswer:
        at = parse_instant(query.at_text, "at")
        snapshot = await self._reader.vehicles((query.plate.value,), ())
        vehicle = snapshot.at_plate(query.plate.value, at)
        if vehicle is None:
            return AccidentAnswer(False, None, None, None, None)
        reader = Reader(officer, role, PURPOSE, request_id, query.accident_ref, query.reason)
        self._access_log.record(reader, vehicle.vin, self._clock())
        result = coverage_status(vehicle.policies, at, reminder_window=self._window)
        current = result.current_policy
        if current is None:
            return AccidentAnswer(False, None, None, None, None)
        record = next(
            (i for i in await self._reader.insurers() if i.code == current.insurer_code), None
        )
        return AccidentAnswer(
            True,
            current.insurer_code,
            record.name if record is not None else None,
            record.claims_phone if record is not None else None,
            mask_policy_no(current.policy_no),
        )
