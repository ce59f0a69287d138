"""The daily match's count of the uninsured by the Python rules (DESIGN §11): the
uninsured list's rule, counted by region, in one pass.

Production counts in SQL, set-wise (``store/repositories/match_counts.py``, wired into
``Enforcement`` as its ``MatchCounts``); this pass is the plain model those counts are
held to (``Enforcement.match_in_python``; a Hypothesis property on both engines) and
the count of an ``Enforcement`` built without SQL counts.

The uninsured list serves pages: a page stops when it is full and the next starts over
from its cursor, and each vehicle listed carries its lapse and last insurer. A count
needs none of that, so it walks the register's VINs once, ``MATCH_BATCH`` at a time,
and keeps only a number per region. The register's reads for the next batch (its VINs
and their lines, in a thread) run while this batch's cover is read and judged, so the
database and the judging overlap. "Not covered" is ``covered_at``, the status's
``covered`` without the rest of the answer. Same rule, same vehicles as the list: a unit
test pins the counts to the pages' (docs/DECISIONS.md, "Scheduled daily match").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from ctplhub.domain.coverage import covered_at
from ctplhub.domain.register import RegisterLine, registered_in
from ctplhub.services.ports import VehicleReader
from ctplhub.services.register_ports import VehicleRegister

MATCH_BATCH = 5_000

_Batch = tuple[list[str], dict[str, list[RegisterLine]]]


class UninsuredCounter:
    def __init__(
        self,
        register: VehicleRegister,
        reader: VehicleReader,
        *,
        batch: int = MATCH_BATCH,
    ) -> None:
        self._register = register
        self._reader = reader
        self._size = batch

    def _batch(self, prefix: str, after: str | None) -> _Batch:
        vins = self._register.candidates(prefix, after, self._size)
        return vins, self._register.lines_of(vins) if vins else {}

    async def by_region(
        self, at: datetime, prefix: str, progress: Callable[[int], None] | None = None
    ) -> dict[str, int]:
        """Registered vehicles under ``prefix`` not covered at ``at``, by region code;
        ``progress`` is told the number counted so far after each batch."""
        counts: dict[str, int] = {}
        total = 0
        pending = asyncio.create_task(asyncio.to_thread(self._batch, prefix, None))
        try:
            while True:
                vins, lines = await pending
                more = len(vins) == self._size
                if more:  # the next batch's reads, while this one is judged
                    pending = asyncio.create_task(asyncio.to_thread(self._batch, prefix, vins[-1]))
                for region in await self._uninsured_regions(vins, lines, at, prefix):
                    counts[region] = counts.get(region, 0) + 1
                    total += 1
                if progress is not None:
                    progress(total)
                if not more:
                    return counts
        finally:  # a failure while judging: the next batch's reads are not left behind
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    async def _uninsured_regions(
        self, vins: list[str], lines: dict[str, list[RegisterLine]], at: datetime, prefix: str
    ) -> list[str]:
        ruling = registered_in(vins, lines, at, prefix)
        if not ruling:
            return []
        snapshot = await self._reader.vehicles((), sorted(ruling))
        regions = []
        for vin, line in ruling.items():
            vehicle = snapshot.by_vin(vin)
            policies = vehicle.policies if vehicle is not None else ()
            if not covered_at(policies, at):
                regions.append(line.region_code)
        return regions
