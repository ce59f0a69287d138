"""Use cases of the daily match (DESIGN §11): the register against cover.

- The **uninsured list** (police, regulators): vehicles whose register status at ``at``
  is ``registered`` and whose coverage status then is not covered (``PENDING_START``,
  ``LAPSED``, ``NO_RECORD``), in a region, in VIN order, a page at a time. A page never
  reads the whole register: it takes the region's next VINs from the register's
  (region_code, vin) index, keeps those whose line at ``at`` is ``registered`` in the
  region, reads the cover of just those through the coverage answers' own read path
  (``VehicleReader``, as bulk verify does) and the §2.5 rules (``coverage_status``), and
  goes on until the page is full (docs/DECISIONS.md, "Vehicle register and daily match").
- The **unmatched list** (an insurer, of its own policies in force): a policy whose VIN
  the register does not know by then (``vin_not_registered``), or whose plate differs
  from the register's (``plate_differs``). Scrapped and deregistered vehicles appear in
  neither list.
- The **match** (``ctplhub match``, the worker's daily run): both, counted, for cron
  and tests. Wired with a ``MatchCounts`` (production: ``SqlMatchCounts``), it counts
  both set-wise in SQL; without one, by the Python rules: the uninsured in a pass of
  their own (``services/match_counts.py``) and each insurer's unmatched list. A
  property test holds the two to the same figures on both engines.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ctplhub.domain.coverage import CoverageStatus, coverage_status, ruling_versions
from ctplhub.domain.errors import InsurerMismatch, ValidationFailed
from ctplhub.domain.identifiers import mask_vin
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.register import (
    RegisterStatus,
    region_prefix,
    register_state_at,
    registered_in,
)
from ctplhub.domain.vehicle import VehicleHistory
from ctplhub.services.match_counts import UninsuredCounter
from ctplhub.services.ports import AccessLog, Clock, Reader, VehicleReader
from ctplhub.services.register_ports import MatchCounts, VehicleRegister

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_PREFIX = "u1."
_IN_FORCE_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class UninsuredVehicle:
    plate: str  # the register's, compact canonical form
    vin: str
    region_code: str
    status: CoverageStatus
    lapsed_since: datetime | None
    last_insurer_code: str | None

    @property
    def vin_masked(self) -> str:
        return mask_vin(self.vin)


@dataclass(frozen=True, slots=True)
class UninsuredPage:
    vehicles: tuple[UninsuredVehicle, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class UninsuredQuery:
    region_prefix: str
    at: datetime
    after: str | None  # the last VIN of the page before (decoded cursor)
    limit: int


@dataclass(frozen=True, slots=True)
class UnmatchedPolicy:
    policy_no: str
    reason: str  # "vin_not_registered" | "plate_differs"
    register_plate: str | None  # compact canonical form, for plate_differs


@dataclass(frozen=True, slots=True)
class MatchReport:
    at: datetime
    region_prefix: str
    uninsured_by_region: dict[str, int] = field(default_factory=dict)
    unmatched_by_insurer: dict[str, dict[str, int]] = field(default_factory=dict)


def encode_cursor(vin: str) -> str:
    """Opaque to callers (the VIN is not shown in clear); stable across requests."""
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(vin.encode()).decode().rstrip("=")


def decode_cursor(raw: object) -> str | None:
    if raw is None:
        return None
    bad = ValidationFailed(
        "cursor must be the next_cursor of a previous page",
        details=[{"field": "cursor", "problem": "not a cursor of this list"}],
    )
    if not isinstance(raw, str) or not raw.startswith(_CURSOR_PREFIX) or len(raw) > 64:
        raise bad
    text = raw[len(_CURSOR_PREFIX) :]
    try:
        vin = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    if len(vin) != 17 or not vin.isalnum():
        raise bad
    return vin


def uninsured_query(body: dict[str, object], now: datetime) -> UninsuredQuery:
    """The body of ``POST /v1/enforcement/uninsured``, checked."""
    allowed = {"region_prefix", "at", "cursor", "limit", "purpose"}
    extra = sorted(k for k in body if k not in allowed)
    if extra:
        raise ValidationFailed(
            "the request is not valid",
            details=[{"field": k, "problem": "Extra inputs are not permitted"} for k in extra],
        )
    if "region_prefix" not in body:
        raise ValidationFailed(
            "region_prefix is required (e.g. 3205; an empty string lists the whole country)",
            details=[{"field": "region_prefix", "problem": "Field required"}],
        )
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be an integer from 1 to {MAX_LIMIT:,}",
            details=[{"field": "limit", "problem": f"1-{MAX_LIMIT}"}],
        )
    at_raw = body.get("at")
    return UninsuredQuery(
        region_prefix(body["region_prefix"]),
        now if at_raw is None else parse_instant(at_raw, "at"),
        decode_cursor(body.get("cursor")),
        limit,
    )


def _last_insurer(vehicle: VehicleHistory | None, at: datetime) -> str | None:
    """The insurer of the cover that ended last by ``at`` (null: none ever did)."""
    if vehicle is None:
        return None
    best: tuple[datetime, str] | None = None
    for state in ruling_versions(vehicle.policies):
        span = state.interval
        if span is not None and span[1] <= at and (best is None or span[1] > best[0]):
            best = (span[1], state.insurer_code)
    return best[1] if best is not None else None


class Enforcement:
    def __init__(
        self,
        register: VehicleRegister,
        reader: VehicleReader,
        clock: Clock,
        *,
        access_log: AccessLog,
        reminder_window: timedelta,
        counts: MatchCounts | None = None,
    ) -> None:
        self._register = register
        self._counts = counts
        self._reader = reader
        self._clock = clock
        self._access_log = access_log
        self._window = reminder_window

    def now(self) -> datetime:
        return self._clock()

    async def uninsured(self, query: UninsuredQuery, *, reader: Reader | None) -> UninsuredPage:
        """One page; each vehicle listed goes to the access log, read by ``reader`` (None:
        the match's counts, which show no vehicle to anyone)."""
        found: list[UninsuredVehicle] = []
        after = query.after
        # Candidates per round: a page's worth and some, for the covered ones skipped.
        batch = min(MAX_LIMIT, max(2 * query.limit, 200))
        while True:
            vins = await asyncio.to_thread(
                self._register.candidates, query.region_prefix, after, batch
            )
            exhausted = len(vins) < batch
            listed = await self._uninsured_among(vins, query)
            for position, vehicle in enumerate(listed):
                found.append(vehicle)
                if len(found) == query.limit:
                    last = exhausted and position == len(listed) - 1
                    self._log(found, reader)
                    return UninsuredPage(tuple(found), None if last else encode_cursor(vehicle.vin))
            if exhausted:
                self._log(found, reader)
                return UninsuredPage(tuple(found), None)
            after = vins[-1]

    async def all_uninsured(
        self, query: UninsuredQuery, *, reader: Reader | None
    ) -> AsyncIterator[UninsuredPage]:
        """Every page from ``query``'s cursor on, ``MAX_LIMIT`` vehicles a page (CSV)."""
        current = UninsuredQuery(query.region_prefix, query.at, query.after, MAX_LIMIT)
        while True:
            page = await self.uninsured(current, reader=reader)
            yield page
            if page.next_cursor is None:
                return
            current = UninsuredQuery(
                query.region_prefix, query.at, decode_cursor(page.next_cursor), MAX_LIMIT
            )

    async def _uninsured_among(
        self, vins: Sequence[str], query: UninsuredQuery
    ) -> list[UninsuredVehicle]:
        if not vins:
            return []
        lines = await asyncio.to_thread(self._register.lines_of, vins)
        ruling = registered_in(vins, lines, query.at, query.region_prefix)
        if not ruling:
            return []
        snapshot = await self._reader.vehicles((), sorted(ruling))
        listed: list[UninsuredVehicle] = []
        for vin, line in ruling.items():
            vehicle = snapshot.by_vin(vin)
            policies = vehicle.policies if vehicle is not None else ()
            result = coverage_status(policies, query.at, reminder_window=self._window)
            if result.status.covered:
                continue
            listed.append(
                UninsuredVehicle(
                    line.plate,
                    vin,
                    line.region_code,
                    result.status,
                    result.lapsed_since,
                    _last_insurer(vehicle, query.at),
                )
            )
        return listed

    def _log(self, vehicles: Sequence[UninsuredVehicle], reader: Reader | None) -> None:
        if vehicles and reader is not None:
            self._access_log.record_many(reader, (v.vin for v in vehicles), self._clock())

    # -- the unmatched list ---------------------------------------------------------

    def unmatched(
        self, code: str, *, caller: str, at: datetime | None = None
    ) -> list[UnmatchedPolicy]:
        """The insurer's policies in force at ``at`` (now) that the register does not match,
        by ``policy_no``; only for the insurer itself (``403 insurer_mismatch``)."""
        if caller != code:
            raise InsurerMismatch(f"this key belongs to insurer {caller}, not {code}")
        return list(self._unmatched(code, at or self._clock()))

    def _unmatched(self, code: str, at: datetime) -> list[UnmatchedPolicy]:
        found: list[UnmatchedPolicy] = []
        for chunk in self._register.in_force(code, at, _IN_FORCE_CHUNK):
            lines = self._register.lines_of([p.vin for p in chunk])
            for policy in chunk:
                line = register_state_at(lines.get(policy.vin, ()), at)
                if line is None:
                    found.append(UnmatchedPolicy(policy.policy_no, "vin_not_registered", None))
                elif line.status is not RegisterStatus.REGISTERED:
                    continue  # scrapped or deregistered: never listed (§11)
                elif line.plate != policy.plate:
                    found.append(UnmatchedPolicy(policy.policy_no, "plate_differs", line.plate))
        return found

    # -- the match (``ctplhub match``) ---------------------------------------------

    async def match(
        self,
        at: datetime,
        prefix: str = "",
        *,
        progress: Callable[[int], None] | None = None,
    ) -> MatchReport:
        """Count the uninsured by region (under ``prefix``) and the unmatched by insurer,
        at ``at``. ``progress`` is told the number of uninsured vehicles counted so far."""
        prefix = region_prefix(prefix)
        if self._counts is not None:
            totals = await asyncio.to_thread(self._counts.count, at, prefix)
            report = MatchReport(
                at, prefix, dict(totals.uninsured_by_region), dict(totals.unmatched_by_insurer)
            )
            if progress is not None:
                progress(sum(report.uninsured_by_region.values()))
            return report
        return await self.match_in_python(at, prefix, progress=progress)

    async def match_in_python(
        self,
        at: datetime,
        prefix: str = "",
        *,
        progress: Callable[[int], None] | None = None,
    ) -> MatchReport:
        """:meth:`match` by the Python rules, batch by batch through the coverage read
        path: the slow, plain model the SQL counts are held to (tests; no ``counts``)."""
        report = MatchReport(at, prefix)
        counter = UninsuredCounter(self._register, self._reader)
        report.uninsured_by_region.update(
            await counter.by_region(at, region_prefix(prefix), progress)
        )
        for code in await asyncio.to_thread(self._register.insurer_codes):
            unmatched = await asyncio.to_thread(self._unmatched, code, at)
            counts = {"vin_not_registered": 0, "plate_differs": 0}
            for policy in unmatched:
                counts[policy.reason] += 1
            report.unmatched_by_insurer[code] = counts
        return report
