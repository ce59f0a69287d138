"""The insurer table as coverage answers see it, re-read at most once a second."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ctplhub.domain.freshness import Freshness, InsurerInfo
from ctplhub.services.ports import InsurerRecord, VehicleReader


class InsurerDirectory:
    """Every answer needs every insurer's certification and watermark (§2.6), and the
    table changes a few times a day; reading it per query was a third of a query's
    database work. The database stays the only source of truth: an answer may lag a
    certification change or a sync by at most ``ttl_s`` (against a staleness threshold of
    24 hours), and every process converges on its own. Each read also fixes the
    freshness view answers use until the next one.
    """

    def __init__(
        self,
        ttl_s: float,
        stale_after: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._stale_after = stale_after
        self._monotonic = monotonic  # real elapsed time, whatever the answers' clock says
        self._read_at = -math.inf
        self._freshness = Freshness({}, datetime.min, stale_after)

    async def freshness(self, reader: VehicleReader, now: datetime) -> Freshness:
        """Every insurer's freshness as of ``now`` (or of an instant at most ``ttl_s``
        earlier, when the table was last read)."""
        if self._stale():
            self._keep(await reader.insurers(), now)
        return self._freshness

    def _stale(self) -> bool:
        now = self._monotonic()
        return not self._read_at <= now < self._read_at + self._ttl_s

    def _keep(self, records: Sequence[InsurerRecord], now: datetime) -> None:
        insurers = {r.code: InsurerInfo(r.code, r.name, r.status, r.last_sync_at) for r in records}
        self._freshness = Freshness(insurers, now, self._stale_after)
        self._read_at = self._monotonic()
