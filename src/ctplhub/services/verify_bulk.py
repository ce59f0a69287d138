"""Use case: police and regulators verify coverage, one vehicle or ten thousand, each at
its own instant (DESIGN §3 ``/v1/coverage/verify``, §3.1 bulk verify results).

One read fetches every vehicle the items name (``VehicleReader``), in parts; each item is
answered by the same §2.5 rules as an owner's query. A plate no vehicle carries at the
instant asked is ``NO_RECORD``, not an error; an item that cannot be read at all (no plate
or VIN, a malformed one, a bad instant) gets its error and never stops the others.

Each vehicle the call read goes to the access log once (§5.3), however many items named
it, as read by the caller (``reader``: the bearer token's user and role).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ctplhub.domain.coverage import CoverageStatus, coverage_status
from ctplhub.domain.errors import DomainError, ValidationFailed
from ctplhub.domain.freshness import Caveat, Freshness
from ctplhub.domain.identifiers import Plate, Vin
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.records import fast_init
from ctplhub.domain.vehicle import VehicleHistory, VehicleSnapshot
from ctplhub.services.insurer_directory import InsurerDirectory
from ctplhub.services.ports import AccessLog, Clock, Reader, VehicleReader

_YIELD_EVERY = 500  # items answered between turns of the event loop: others wait less


@fast_init
@dataclass(frozen=True, slots=True)
class VerifiedItem:
    """An item answered: by plate (``plate``) or by VIN (``vin``)."""

    plate: Plate | None
    vin: Vin | None
    at: datetime
    status: CoverageStatus
    insurer_code: str | None  # of the policy covering ``at``
    covered_until: datetime | None
    caveats: tuple[Caveat, ...]

    @property
    def covered(self) -> bool:
        return self.status.covered


@fast_init
@dataclass(frozen=True, slots=True)
class RejectedItem:
    """An item that could not be answered, echoing what was given where it was text."""

    key: Literal["plate", "vin"]
    given: str | None
    at: str | None
    error: DomainError


VerifyResult = VerifiedItem | RejectedItem


@fast_init
@dataclass(frozen=True, slots=True)
class _Item:
    plate: Plate | None
    vin: Vin | None
    at: datetime


class VerifyBulk:
    def __init__(
        self,
        reader: VehicleReader,
        insurers: InsurerDirectory,
        clock: Clock,
        *,
        reminder_window: timedelta,
        access_log: AccessLog,
    ) -> None:
        self._reader = reader
        self._insurers = insurers
        self._clock = clock
        self._window = reminder_window
        self._access_log = access_log

    async def verify(self, items: Sequence[object], *, reader: Reader) -> list[VerifyResult]:
        """One result per item, in the order asked; one access-log entry per vehicle read.

        The items are answered part by part as the reader hands the parts over, so the
        server's work on the vehicles read overlaps the database's on the next chunk
        (docs/PERFORMANCE.md)."""
        now = self._clock()
        parsed = [_parse(item, now) for item in items]
        results: list[VerifyResult | None] = [None] * len(parsed)
        by_plate: dict[str, list[int]] = {}
        by_vin: dict[str, list[int]] = {}
        for index, item in enumerate(parsed):
            if isinstance(item, RejectedItem):
                results[index] = item
            elif item.plate is not None:
                by_plate.setdefault(item.plate.value, []).append(index)
            elif item.vin is not None:
                by_vin.setdefault(item.vin.value, []).append(index)
        freshness = await self._insurers.freshness(self._reader, now)
        read: dict[str, None] = {}  # the VINs of the vehicles answered, each once
        answered = 0
        async for part in self._reader.vehicle_parts(sorted(by_plate), sorted(by_vin)):
            snapshot = part.snapshot
            for key, indexes, find in (
                *((plate, by_plate[plate], snapshot.at_plate) for plate in part.plates),
                *((vin, by_vin[vin], _by_vin(snapshot)) for vin in part.vins),
            ):
                for index in indexes:
                    answered += 1
                    if answered % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    item = parsed[index]
                    assert isinstance(item, _Item)
                    vehicle = find(key, item.at)
                    if vehicle is not None:
                        read[vehicle.vin] = None
                    results[index] = self._answer(item, vehicle, freshness)
        self._access_log.record_many(reader, read, now)
        if any(result is None for result in results):  # a reader that lost a key
            raise RuntimeError("the read's parts did not cover every plate and VIN asked")
        return results  # type: ignore[return-value]  # no None left: checked above

    def _answer(
        self, item: _Item, vehicle: VehicleHistory | None, freshness: Freshness
    ) -> VerifiedItem:
        policies = vehicle.policies if vehicle else ()
        result = coverage_status(policies, item.at, reminder_window=self._window)
        current = result.current_policy
        return VerifiedItem(
            item.plate,
            item.vin,
            item.at,
            result.status,
            current.insurer_code if current else None,
            result.covered_until,
            freshness.caveats({p.insurer_code for p in policies}, result.status),
        )


def _by_vin(snapshot: VehicleSnapshot) -> Callable[[str, datetime], VehicleHistory | None]:
    return lambda vin, _at: snapshot.by_vin(vin)


def _parse(item: object, now: datetime) -> _Item | RejectedItem:
    key: Literal["plate", "vin"] = "plate"
    given: object = None
    at: object = None
    try:
        if not isinstance(item, Mapping):
            raise ValidationFailed("each item is an object with plate or vin")
        at = item.get("at")
        if item.get("vin") is not None:
            key, given = "vin", item["vin"]
            return _Item(None, Vin.parse(given), _instant(at, now))
        if item.get("plate") is not None:
            given = item["plate"]
            return _Item(Plate.parse(given), None, _instant(at, now))
        raise ValidationFailed("each item needs plate or vin")
    except DomainError as error:
        return RejectedItem(
            key,
            given if isinstance(given, str) else None,
            at if isinstance(at, str) else None,
            error,
        )


def _instant(raw: object, now: datetime) -> datetime:
    return now if raw is None else parse_instant(raw, "at")
