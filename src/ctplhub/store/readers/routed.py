"""The coverage read path over a primary and a streaming replica (docs/deploy.md, "Read
routing"): every read the ``VehicleReader`` serves (the owner's query, bulk verify, the
cameras, the enforcement lists) tolerates the replica's lag, except one that follows a
write it must see.

The rule: a read goes to the replica only when the replica holds at least as many
ledger leaves as the read fence says the latest acknowledged write reached; otherwise,
or when the fence or the replica cannot answer, to the primary. A writer publishes the
fence before its answer leaves (``ReportEvents``), so a read that starts after a write's
answer never sees the database from before it: read-your-writes, for the writer and
for anyone the writer tells. The replica's size only grows (replay is in commit order),
so a size seen once is kept for a second and re-read only when the fence passes it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import structlog
from prometheus_client import Counter

from ctplhub.domain.vehicle import VehicleSnapshot
from ctplhub.services.ports import InsurerRecord, ReadPart, VehicleReader

READS_ROUTED = Counter(
    "ctplhub_reads_routed_total",
    "Coverage reads by the database the routing chose (a replica read that fails is asked "
    "again of the primary, logged as read_routing_failed)",
    ["database"],
)
_TRUST_REPLICA_SIZE_S = 1.0  # then re-read: a re-pointed replica may be another server
_REPLICA_DOWN_S = 5.0  # after a failure there, reads skip the replica this long
_log = structlog.get_logger(__name__)


class SizedReader(VehicleReader, Protocol):
    async def ledger_size(self) -> int: ...


class FenceReads(Protocol):
    async def needed(self) -> int | None:
        """The ledger size every read must see; ``None``: unknown (read the primary)."""
        ...

    async def raise_to(self, ledger_size: int) -> None: ...
    async def close(self) -> None: ...


class RoutedVehicleReader:
    def __init__(self, primary: SizedReader, replica: SizedReader, fence: FenceReads) -> None:
        self._primary = primary
        self._replica = replica
        self._fence = fence
        self._replica_size = -1
        self._replica_seen_at = float("-inf")
        self._replica_down_until = float("-inf")

    async def open(self) -> None:
        await self._primary.open()
        await self._replica.open()
        # A fence Redis lost (or never had) would send every read to the primary until
        # the next write: the primary's size now covers every write already answered.
        try:
            await self._fence.raise_to(await self._primary.ledger_size())
        except Exception as error:
            _log.warning("read_fence_unavailable", error=type(error).__name__)

    async def close(self) -> None:
        await self._fence.close()
        await self._replica.close()
        await self._primary.close()

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        reader = await self.choose()
        if reader is self._primary:
            return await reader.vehicles(plates, vins)
        try:
            return await reader.vehicles(plates, vins)
        except Exception as error:
            self._replica_failed(error)
            return await self._primary.vehicles(plates, vins)

    def vehicle_parts(self, plates: Sequence[str], vins: Sequence[str]) -> AsyncIterator[ReadPart]:
        return self._parts(plates, vins)

    async def _parts(self, plates: Sequence[str], vins: Sequence[str]) -> AsyncIterator[ReadPart]:
        reader = await self.choose()  # one database for the whole bulk read
        answered = False
        try:
            async for part in reader.vehicle_parts(plates, vins):
                answered = True
                yield part
        except Exception as error:
            if reader is self._primary or answered:
                raise
            self._replica_failed(error)
            async for part in self._primary.vehicle_parts(plates, vins):
                yield part

    async def insurers(self) -> list[InsurerRecord]:
        reader = await self.choose()
        if reader is self._primary:
            return await reader.insurers()
        try:
            return await reader.insurers()
        except Exception as error:
            self._replica_failed(error)
            return await self._primary.insurers()

    async def choose(self) -> SizedReader:
        """The database this read may use (the rule in the module's docstring)."""
        needed: int | None = None
        try:
            if time.monotonic() >= self._replica_down_until:
                needed = await self._fence.needed()
            if needed is not None and not self._replica_holds(needed):
                self._replica_size = await self._replica.ledger_size()
                self._replica_seen_at = time.monotonic()
        except Exception as error:  # the fence or the replica is down: the primary knows
            self._replica_failed(error)
            needed = None
        if needed is not None and self._replica_holds(needed):
            READS_ROUTED.labels("replica").inc()
            return self._replica
        READS_ROUTED.labels("primary").inc()
        return self._primary

    def _replica_failed(self, error: Exception) -> None:
        _log.warning("read_routing_failed", error=type(error).__name__)
        self._replica_down_until = time.monotonic() + _REPLICA_DOWN_S

    def _replica_holds(self, needed: int) -> bool:
        fresh = time.monotonic() - self._replica_seen_at < _TRUST_REPLICA_SIZE_S
        return fresh and self._replica_size >= needed
