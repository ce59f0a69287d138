"""Use case: "is this vehicle covered at t?" for an owner, verified or not (DESIGN §2.5,
§3, §3.1). The API and the web page both await :meth:`CheckCoverage.query`.

A service answers with typed objects that hold only what may be shown: the VIN and the
policy numbers arrive masked. The API's presenter turns them into JSON and signs them.

Every answer about a vehicle is a read of its data and goes to the access log (§5.3): a
verified answer as ``reader`` (by default an anonymous owner, ``coverage_query``), a
short answer that resolved a vehicle as ``coverage_status_lookup`` (it tells whether the
vehicle is insured).
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ctplhub.domain.coverage import (
    CoverageStatus,
    Gap,
    PolicyState,
    coverage_status,
    covering_policies,
)
from ctplhub.domain.errors import NotFound, ValidationFailed
from ctplhub.domain.freshness import Caveat, Freshness, Source
from ctplhub.domain.identifiers import Plate, mask_vin
from ctplhub.domain.instants import parse_instant
from ctplhub.domain.records import fast_init
from ctplhub.domain.vehicle import VehicleHistory
from ctplhub.services.ids import new_answer_id
from ctplhub.services.insurer_directory import InsurerDirectory
from ctplhub.services.ports import AccessLog, Clock, PersonalData, Reader, VehicleReader

_NOT_FOUND = "no vehicle matches this plate and verification factor"

OWNER = Reader("anonymous", "owner", "coverage_query")
"""An owner's query: owners are anonymous (DESIGN §1), their factor is not kept."""
STATUS_LOOKUP = "coverage_status_lookup"
"""The purpose of a short answer: it reveals whether a vehicle is insured."""
_OWNER_LOOKUP = replace(OWNER, purpose=STATUS_LOOKUP)


@fast_init
@dataclass(frozen=True, slots=True)
class CoverageQuery:
    """The question as it arrived: checked by :meth:`CheckCoverage.query`."""

    plate: object
    vin_last6: object = None
    owner_id_number: object = None
    at: object = None

    @property
    def has_factor(self) -> bool:
        """A verification factor was given: a failure of it counts against the budgets."""
        return self.vin_last6 is not None or self.owner_id_number is not None


@fast_init
@dataclass(frozen=True, slots=True)
class PolicyView:
    """A policy as an answer shows it; ``coverage_end`` is the end of the cover it really
    grants (a surrender cuts it)."""

    insurer_code: str
    insurer_name: str | None
    policy_no_masked: str
    coverage_start: datetime
    coverage_end: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class FullAnswer:
    """The verified answer of §3.1, before it is signed."""

    answer_id: str
    as_of: datetime
    at: datetime
    plate: Plate
    vin_masked: str
    status: CoverageStatus
    current_policy: PolicyView | None
    next_policy: PolicyView | None
    covered_until: datetime | None
    days_to_expiry: int | None
    lapsed_since: datetime | None
    days_lapsed: int | None
    duplicate_coverage: bool
    gaps: tuple[Gap, ...]
    sources: tuple[Source, ...]
    caveats: tuple[Caveat, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """Without a verification factor: covered or not, nothing personal (§3)."""

    plate: Plate
    status: CoverageStatus
    caveats: tuple[Caveat, ...]

    @property
    def covered(self) -> bool:
        return self.status.covered


@dataclass(frozen=True, slots=True)
class AnswerWithHistory:
    """A verified answer and the vehicle's cover history behind it, for the owner's
    timeline: every policy that grants cover, oldest first, shown as answers show
    policies (masked number, the cover a surrender really left)."""

    answer: FullAnswer
    history: tuple[PolicyView, ...]


def mask_policy_no(policy_no: str) -> str:
    """The last four characters, but never more than half of a short number."""
    return "…" + policy_no[-min(4, len(policy_no) // 2) :] if len(policy_no) > 1 else "…"


def policy_view(state: PolicyState, freshness: Freshness) -> PolicyView:
    interval = state.interval
    return PolicyView(
        state.insurer_code,
        freshness.name_of(state.insurer_code),
        mask_policy_no(state.policy_no),
        state.coverage_start,
        interval[1] if interval else state.coverage_end,
    )


def normalise_factor(raw: object, field: str) -> str:
    if not isinstance(raw, str):
        raise ValidationFailed(f"{field} must be a string", details={"field": field})
    return unicodedata.normalize("NFKC", raw).replace(" ", "").upper()


@fast_init
@dataclass(frozen=True, slots=True)
class _Ask:
    """A coverage question, parsed."""

    now: datetime
    plate: Plate
    at: datetime
    vin_last6: str | None
    owner_id: str | None

    @property
    def verified(self) -> bool:
        return self.vin_last6 is not None or self.owner_id is not None


class CheckCoverage:
    def __init__(
        self,
        reader: VehicleReader,
        insurers: InsurerDirectory,
        personal: PersonalData,
        clock: Clock,
        *,
        reminder_window: timedelta,
        access_log: AccessLog,
    ) -> None:
        self._reader = reader
        self._insurers = insurers
        self._personal = personal
        self._clock = clock
        self._window = reminder_window
        self._access_log = access_log

    def _ask(self, q: CoverageQuery) -> _Ask:
        now = self._clock()
        plate = Plate.parse(q.plate)
        at = now if q.at is None else parse_instant(q.at, "at")
        vin_last6 = None if q.vin_last6 is None else normalise_factor(q.vin_last6, "vin_last6")
        owner_id = (
            None
            if q.owner_id_number is None
            else normalise_factor(q.owner_id_number, "owner_id_number")
        )
        if vin_last6 is not None and owner_id is not None:
            raise ValidationFailed("give one verification factor: vin_last6 or owner_id_number")
        return _Ask(now, plate, at, vin_last6, owner_id)

    async def query(self, q: CoverageQuery, reader: Reader = OWNER) -> FullAnswer | ShortAnswer:
        """The full answer with a matching factor, else the short public one; either is
        recorded in the access log when it is about a vehicle, as read by ``reader``."""
        answer, _, _ = await self._answer(self._ask(q), reader)
        return answer

    async def query_with_history(
        self, q: CoverageQuery, reader: Reader = OWNER
    ) -> AnswerWithHistory:
        """The verified answer of :meth:`query` (a factor is required) with the vehicle's
        cover history, from the same single read and recorded once, as ``reader``."""
        ask = self._ask(q)
        if not ask.verified:
            raise ValidationFailed(
                "a verification factor is required: vin_last6 or owner_id_number",
                details=[{"field": "vin_last6", "problem": "Field required"}],
            )
        answer, vehicle, freshness = await self._answer(ask, reader)
        assert isinstance(answer, FullAnswer) and vehicle is not None  # verified
        history = tuple(policy_view(p, freshness) for p in covering_policies(vehicle.policies))
        return AnswerWithHistory(answer, history)

    async def _answer(
        self, ask: _Ask, reader: Reader
    ) -> tuple[FullAnswer | ShortAnswer, VehicleHistory | None, Freshness]:
        snapshot = await self._reader.vehicles((ask.plate.value,), ())
        vehicle = snapshot.at_plate(ask.plate.value, ask.at)
        if ask.verified:
            self._check_factor(ask, vehicle)
        if vehicle is not None:
            if not ask.verified:
                reader = (
                    _OWNER_LOOKUP if reader is OWNER else replace(reader, purpose=STATUS_LOOKUP)
                )
            self._access_log.record(reader, vehicle.vin, ask.now)
        policies = vehicle.policies if vehicle else ()
        result = coverage_status(policies, ask.at, reminder_window=self._window)
        freshness = await self._insurers.freshness(self._reader, ask.now)
        reporting = {p.insurer_code for p in policies}
        caveats = freshness.caveats(reporting, result.status)
        if not ask.verified:
            return ShortAnswer(ask.plate, result.status, caveats), vehicle, freshness
        assert vehicle is not None
        full = FullAnswer(
            answer_id=new_answer_id(),
            as_of=ask.now,
            at=ask.at,
            plate=ask.plate,
            vin_masked=mask_vin(vehicle.vin),
            status=result.status,
            current_policy=(
                policy_view(result.current_policy, freshness) if result.current_policy else None
            ),
            next_policy=policy_view(result.next_policy, freshness) if result.next_policy else None,
            covered_until=result.covered_until,
            days_to_expiry=result.days_to_expiry,
            lapsed_since=result.lapsed_since,
            days_lapsed=result.days_lapsed,
            duplicate_coverage=result.duplicate_coverage,
            gaps=result.gaps,
            sources=freshness.sources(reporting),
            caveats=caveats,
        )
        return full, vehicle, freshness

    async def verified_vehicle(self, q: CoverageQuery) -> VehicleHistory:
        """The vehicle a verified query body names, for the other endpoints that take one
        (§3: the access log, certificates, disputes): a factor is required, and a wrong
        one is ``404 not_found`` exactly as for the query. Records nothing."""
        ask = self._ask(q)
        if not ask.verified:
            raise ValidationFailed(
                "a verification factor is required: vin_last6 or owner_id_number",
                details=[{"field": "vin_last6", "problem": "Field required"}],
            )
        snapshot = await self._reader.vehicles((ask.plate.value,), ())
        vehicle = snapshot.at_plate(ask.plate.value, ask.at)
        self._check_factor(ask, vehicle)
        assert vehicle is not None
        return vehicle

    def _check_factor(self, ask: _Ask, vehicle: VehicleHistory | None) -> None:
        """A wrong factor answers exactly like a plate that does not exist (§3)."""
        if vehicle is None:
            raise NotFound(_NOT_FOUND)
        if ask.vin_last6 is not None:
            matches = hmac.compare_digest(vehicle.vin[-6:].encode(), ask.vin_last6.encode())
        else:
            assert ask.owner_id is not None
            held = vehicle.owner_index
            matches = held is not None and self._personal.blind_index_matches(held, ask.owner_id)
        if not matches:
            raise NotFound(_NOT_FOUND)
