"""Which vehicle a plate means at an instant (DESIGN §2.5).

A vehicle's identity is its VIN. Every stored event is a *claim* that its VIN carried its
plate from the event's ``occurred_at``; a vehicle's plate at ``t`` is the plate of its
latest claim up to ``t`` (ties: the event received later). A plate at ``t`` resolves to
the vehicle whose plate at ``t`` it is; if two claim it, the more recent claim wins.

Plates move between vehicles, and an insurer that loads its existing book today reports
``occurred_at`` = today. So when no vehicle had claimed the plate by ``t``, the vehicle
whose *earliest* event carries the plate stands for the time before that event (if
several, the earliest such event; ties by arrival): a police check of last year's
accident still finds the car.

The rule needs every claim of every vehicle that ever claimed the plate, and nothing
else; a :class:`VehicleSnapshot` holds exactly that for the plates and VINs it was read
for, so one read can serve many questions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.records import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class PlateClaim:
    """One event's statement that ``vin`` carried ``plate`` from ``occurred_at``."""

    vin: str
    plate: str
    occurred_at: datetime
    seq: int  # arrival order: the stored event id

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.occurred_at, self.seq)


@fast_init
@dataclass(frozen=True, slots=True)
class VehicleHistory:
    """What the registry holds about one vehicle: the plate claims of all its events,
    its policies, and the blind index of the owner its newest event names."""

    vin: str
    claims: tuple[PlateClaim, ...]
    policies: tuple[PolicyState, ...]
    owner_index: bytes | None


def resolve_plate(
    plate: str, at: datetime, candidates: Iterable[VehicleHistory]
) -> VehicleHistory | None:
    """The vehicle ``plate`` (canonical form) means at ``at``, among ``candidates``: the
    complete histories of the vehicles that ever claimed it (others may be among them).

    One pass over each vehicle's claims finds its latest claim up to ``at`` (its plate
    then), its earliest claim, and whether anyone claimed ``plate`` by ``at``."""
    holder: tuple[tuple[datetime, int], VehicleHistory] | None = None
    first: tuple[tuple[datetime, int], VehicleHistory] | None = None
    claimed_by_then = False
    for vehicle in candidates:
        latest: PlateClaim | None = None
        earliest: PlateClaim | None = None
        for claim in vehicle.claims:
            if claim.occurred_at <= at:
                if latest is None or claim.order > latest.order:
                    latest = claim
                if claim.plate == plate:
                    claimed_by_then = True
            if earliest is None or claim.order < earliest.order:
                earliest = claim
        if (
            latest is not None
            and latest.plate == plate
            and (holder is None or latest.order > holder[0])
        ):
            holder = (latest.order, vehicle)
        if (
            earliest is not None
            and earliest.plate == plate
            and (first is None or earliest.order < first[0])
        ):
            first = (earliest.order, vehicle)
    if holder is not None:
        return holder[1]
    if claimed_by_then:
        return None  # the plate was in use before ``at`` and had left every vehicle by then
    return first[1] if first is not None else None


class VehicleSnapshot:
    """The histories of the vehicles one read found, indexed for the questions asked:
    by VIN, and by every plate any of their events carried."""

    __slots__ = ("_by_plate", "_by_vin", "_one_plate")

    def __init__(self, vehicles: Iterable[VehicleHistory]) -> None:
        self._by_vin: dict[str, VehicleHistory] = {}
        self._by_plate: dict[str, list[VehicleHistory]] = {}
        self._one_plate: set[str] = set()  # VINs whose every claim carries the same plate
        for vehicle in vehicles:
            self._by_vin[vehicle.vin] = vehicle
            plates = {claim.plate for claim in vehicle.claims}
            if len(plates) == 1:
                self._one_plate.add(vehicle.vin)
            for plate in plates:
                self._by_plate.setdefault(plate, []).append(vehicle)

    @classmethod
    def union(cls, parts: Iterable[VehicleSnapshot]) -> VehicleSnapshot:
        """One snapshot of several reads (a vehicle read twice is the same history)."""
        return cls({v.vin: v for part in parts for v in part._by_vin.values()}.values())

    def by_vin(self, vin: str) -> VehicleHistory | None:
        return self._by_vin.get(vin)

    def at_plate(self, plate: str, at: datetime) -> VehicleHistory | None:
        """The vehicle ``plate`` means at ``at`` (§2.5), if the snapshot was read for it."""
        candidates = self._by_plate.get(plate, ())
        if len(candidates) == 1 and candidates[0].vin in self._one_plate:
            # The only vehicle that ever carried the plate, and never another: it holds
            # the plate from its first claim, and stands for the time before (§2.5).
            return candidates[0]
        return resolve_plate(plate, at, candidates)

    def __len__(self) -> int:
        return len(self._by_vin)
