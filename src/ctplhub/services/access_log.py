"""Use case: a verified owner lists who read their vehicle's data (DESIGN §3
``POST /v1/coverage/access-log``, §5.3).

The body is a verified query's; a wrong factor is ``404 not_found`` like the query's, and
a body without a factor is ``400 validation_failed``. The listing is itself a read of the
vehicle's data, so it is recorded first (``access_log_view``) and shows as the newest
entry. Entries are those of the last ``keep`` (a year), newest first, at most ``cap``.
"""

from __future__ import annotations

from datetime import timedelta

from ctplhub.services.check_coverage import CheckCoverage, CoverageQuery
from ctplhub.services.ports import AccessEntry, AccessLog, Clock, Reader

VIEW = Reader("anonymous", "owner", "access_log_view")

KEEP = timedelta(days=365)
CAP = 500


class OwnerAccessLog:
    def __init__(
        self,
        coverage: CheckCoverage,
        access_log: AccessLog,
        clock: Clock,
        *,
        keep: timedelta = KEEP,
        cap: int = CAP,
    ) -> None:
        self._coverage = coverage
        self._log = access_log
        self._clock = clock
        self._keep = keep
        self._cap = cap

    async def entries(self, q: CoverageQuery, reader: Reader = VIEW) -> list[AccessEntry]:
        vehicle = await self._coverage.verified_vehicle(q)
        now = self._clock()
        self._log.record(reader, vehicle.vin, now)
        return await self._log.entries(vehicle.vin, since=now - self._keep, limit=self._cap)
