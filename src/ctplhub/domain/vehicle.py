"""Which vehicle a plate belongs to (DESIGN §2.5).

A vehicle's identity is its VIN; its plate at an instant is the plate of its most recent
event by ``occurred_at`` up to that instant (ties: the event received later). A plate
resolves to the vehicle whose plate it is; if two claim it, the more recent claim wins.
Plates move between vehicles, so a historic question resolves at the instant asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime


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


def latest_claims(claims: Iterable[PlateClaim]) -> dict[str, PlateClaim]:
    """Each vehicle's most recent claim: its plate as of the claims given."""
    latest: dict[str, PlateClaim] = {}
    for claim in claims:
        held = latest.get(claim.vin)
        if held is None or claim.order > held.order:
            latest[claim.vin] = claim
    return latest


def plate_holders(latest_by_vin: Mapping[str, PlateClaim]) -> dict[str, str]:
    """Plate → the VIN whose current plate it is; the more recent claim wins a tie."""
    holders: dict[str, PlateClaim] = {}
    for claim in latest_by_vin.values():
        held = holders.get(claim.plate)
        if held is None or claim.order > held.order:
            holders[claim.plate] = claim
    return {plate: claim.vin for plate, claim in holders.items()}


def resolve_plate(plate: str, latest_by_vin: Mapping[str, PlateClaim]) -> str | None:
    """The VIN whose current plate is ``plate``; the more recent claim wins a tie."""
    return plate_holders(latest_by_vin).get(plate)
