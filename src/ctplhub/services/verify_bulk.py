"""Use case: police and regulators verify coverage, one vehicle or ten thousand, each at
its own instant (DESIGN §3 ``/v1/coverage/verify``, §3.1 bulk verify results).

One read fetches every vehicle the items name (``VehicleReader``), in parts; each item is
answered by the same §2.5 rules as an owner's query. A plate no vehicle carries at the
instant asked is ``NO_RECORD``, not an error; an item that cannot be read at all (no plate
or VIN, a malformed one, a bad instant) gets its error and never stops the others.

Each vehicle the call read goes to the access log once (§5.3), however many items named
it, as read by the caller (``reader``: the bearer token's user and role).

Live confirmation (§10, ``services/live_confirmation.py``): an item that is ``LAPSED`` or
``NO_RECORD`` while a relevant certified insurer is stale is set aside during the pass
and, after it, the insurers with an endpoint are asked, all at once and within the
verify's budget; their word becomes the item's ``confirmed_by`` and ``covered``, its
``status`` stays the registry's. When no stale certified insurer has an endpoint (read at
most once per ``insurer_cache_s``), nothing else is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from ctplhub.domain.coverage import CoverageStatus, coverage_summary
from ctplhub.domain.errors import DomainError, ValidationFailed
from ctplhub.domain.freshness import Caveat, Freshness
from ctplhub.domain.identifiers import Plate, Vin, display_plate
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.records import fast_init
from ctplhub.domain.vehicle import VehicleHistory, VehicleSnapshot
from ctplhub.services.insurer_directory import InsurerDirectory
from ctplhub.services.live_confirmation import ConfirmAsk, Confirmation, LiveConfirmation
from ctplhub.services.ports import AccessLog, Clock, Reader, VehicleReader

_YIELD_EVERY = 500  # items answered between turns of the event loop: others wait less
_CONFIRM = frozenset({CoverageStatus.LAPSED, CoverageStatus.NO_RECORD})  # DESIGN §10
_LOOK_BACK = timedelta(days=90)  # "an insurer that covered the vehicle in the last 90 days"

T = TypeVar("T")


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
    # After a live confirmation (§10): the insurer's word, which ``covered`` then is.
    confirmed_by: Confirmation | None = None

    @property
    def covered(self) -> bool:
        if self.confirmed_by is not None:
            return self.confirmed_by.covered
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
class PlateCheck:
    """A plate's coverage at an instant as a roadside camera's read needs it (DESIGN §12):
    the status, when the cover lapsed, and the vehicle meant (None: no vehicle carried
    the plate then), whose VIN the caller logs only if it keeps something of the read."""

    status: CoverageStatus
    lapsed_since: datetime | None
    vin: str | None


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
        confirmation: LiveConfirmation | None = None,
    ) -> None:
        self._reader = reader
        self._insurers = insurers
        self._clock = clock
        self._window = reminder_window
        self._access_log = access_log
        self._confirmation = confirmation

    async def verify(self, items: Sequence[object], *, reader: Reader) -> list[VerifyResult]:
        """One result per item, in the order asked; one access-log entry per vehicle read."""
        return await self.verify_as(items, reader=reader, present=_as_is)

    async def verify_as(
        self, items: Sequence[object], *, reader: Reader, present: Callable[[VerifyResult], T]
    ) -> list[T]:
        """:meth:`verify`, each result handed to ``present`` as soon as it is answered.

        The items are answered part by part as the reader hands the parts over, so the
        server's work on the vehicles read, and the caller's on the answers (``present``:
        the API's presenter), overlap the database's on the next chunk; the freshness of
        the insurers is read while the items are parsed (docs/PERFORMANCE.md §18)."""
        started = time.monotonic()
        now = self._clock()
        fresh = asyncio.ensure_future(self._insurers.freshness(self._reader, now))
        by_plate: dict[str, list[int]] = {}
        by_vin: dict[str, list[int]] = {}
        try:
            parsed = [_parse(item, now) for item in items]
            results: list[T | None] = [None] * len(parsed)
            for index, item in enumerate(parsed):
                if isinstance(item, RejectedItem):
                    results[index] = present(item)
                elif item.plate is not None:
                    by_plate.setdefault(item.plate.value, []).append(index)
                elif item.vin is not None:
                    by_vin.setdefault(item.vin.value, []).append(index)
        except BaseException:  # the freshness read is not left running unawaited
            fresh.cancel()
            raise
        freshness = await fresh
        # The stale certified insurers with an endpoint: whom live confirmation may ask
        # (§10). None (the usual case) and the pass below does nothing more than before.
        stale: frozenset[str] = frozenset()
        if self._confirmation is not None:
            stale_certified = [s.insurer_code for s in freshness.sources(())]
            if stale_certified:
                stale = await self._confirmation.askable(stale_certified)
        asks: list[tuple[int, ConfirmAsk, VerifiedItem]] = []
        read: dict[str, None] = {}  # the VINs of the vehicles answered, each once
        answered = 0
        async for part in self._reader.vehicle_parts(sorted(by_plate), sorted(by_vin)):
            snapshot = part.snapshot
            at_vin = _by_vin(snapshot)
            for key, indexes, find in (
                *((plate, by_plate[plate], snapshot.at_plate) for plate in part.plates),
                *((vin, by_vin[vin], at_vin) for vin in part.vins),
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
                    result = self._answer(item, vehicle, freshness)
                    results[index] = present(result)
                    if stale and result.status in _CONFIRM:
                        ask = _confirm_ask(item, result.status, vehicle, stale)
                        if ask is not None:
                            asks.append((index, ask, result))
        self._access_log.record_many(reader, read, now)
        if any(result is None for result in results):  # a reader that lost a key
            raise RuntimeError("the read's parts did not cover every plate and VIN asked")
        if asks and self._confirmation is not None:
            outcomes = await self._confirmation.confirm(
                [ask for _, ask, _ in asks], stale, started=started
            )
            for (index, _, done), outcome in zip(asks, outcomes, strict=True):
                if outcome is None:
                    continue
                results[index] = present(
                    replace(
                        done,
                        confirmed_by=outcome.confirmed_by,
                        caveats=done.caveats + outcome.caveats,
                    )
                )
        return results  # type: ignore[return-value]  # no None left: checked above

    async def check_plates(self, asked: Sequence[tuple[Plate, datetime]]) -> list[PlateCheck]:
        """One check per ``(plate, at)``, in the order asked, through the same read and the
        same §2.5 rules as :meth:`verify`, but with no access log entry and no live
        confirmation: the ANPR consumer logs only the reads that raise an alert (the
        others are of insured drivers, of whom nothing is kept) and answers within a
        second (docs/DECISIONS.md, "Roadside cameras")."""
        by_plate: dict[str, list[int]] = {}
        for index, (plate, _) in enumerate(asked):
            by_plate.setdefault(plate.value, []).append(index)
        checks: list[PlateCheck | None] = [None] * len(asked)
        answered = 0
        async for part in self._reader.vehicle_parts(sorted(by_plate), ()):
            snapshot = part.snapshot
            for key in part.plates:
                for index in by_plate[key]:
                    answered += 1
                    if answered % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    at = asked[index][1]
                    vehicle = snapshot.at_plate(key, at)
                    result = coverage_summary(
                        vehicle.policies if vehicle else (), at, reminder_window=self._window
                    )
                    checks[index] = PlateCheck(
                        result.status, result.lapsed_since, vehicle.vin if vehicle else None
                    )
        if any(check is None for check in checks):
            raise RuntimeError("the read's parts did not cover every plate asked")
        return checks  # type: ignore[return-value]  # no None left: checked above

    def _answer(
        self, item: _Item, vehicle: VehicleHistory | None, freshness: Freshness
    ) -> VerifiedItem:
        policies = vehicle.policies if vehicle else ()
        result = coverage_summary(policies, item.at, reminder_window=self._window)
        current = result.current_policy
        return VerifiedItem(
            item.plate,
            item.vin,
            item.at,
            result.status,
            current.insurer_code if current else None,
            result.covered_until,
            freshness.caveats((p.insurer_code for p in policies), result.status),
        )


def _as_is(result: VerifyResult) -> VerifyResult:
    return result


def _by_vin(snapshot: VehicleSnapshot) -> Callable[[str, datetime], VehicleHistory | None]:
    return lambda vin, _at: snapshot.by_vin(vin)


def _confirm_ask(
    item: _Item, status: CoverageStatus, vehicle: VehicleHistory | None, stale: frozenset[str]
) -> ConfirmAsk | None:
    """What to ask whom about a bad-news item, or None when no stale insurer is relevant:
    for ``LAPSED``, the stale insurers whose cover of the vehicle ended within 90 days
    before ``at``; for ``NO_RECORD``, every stale certified insurer (``None``)."""
    insurers: frozenset[str] | None = None
    if status is CoverageStatus.LAPSED and vehicle is not None:
        since = item.at - _LOOK_BACK
        insurers = frozenset(
            p.insurer_code
            for p in vehicle.policies
            if p.insurer_code in stale
            and (span := p.interval) is not None
            and span[0] <= item.at
            and span[1] > since
        )
        if not insurers:
            return None
    if item.plate is not None:
        plate: str | None = item.plate.display
    else:  # asked by VIN: the plate the vehicle carried at ``at``, when it is known
        claims = [c for c in vehicle.claims if c.occurred_at <= item.at] if vehicle else []
        plate = display_plate(max(claims, key=lambda c: c.order).plate) if claims else None
    vin = vehicle.vin if vehicle is not None else (item.vin.value if item.vin else None)
    return ConfirmAsk(plate, vin, item.at, insurers)


def _parse(item: object, now: datetime) -> _Item | RejectedItem:
    if type(item) is dict and item.get("vin") is None:  # a JSON item by plate: the usual case
        at = item.get("at")
        plate = item.get("plate")
        if type(plate) is str and at is None:
            try:
                return _Item(Plate.parse(plate), None, now)
            except DomainError as error:
                return RejectedItem("plate", plate, None, error)
    return _parse_any(item, now)


def _parse_any(item: object, now: datetime) -> _Item | RejectedItem:
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
