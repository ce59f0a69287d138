"""Use cases: answer "is this vehicle covered at t?" for owners (verified or not) and for
police and regulators in bulk (DESIGN §2.5, §3, §3.1)."""

from __future__ import annotations

import hmac
import math
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from ctplhub.domain.coverage import CoverageResult, PolicyState, coverage_status
from ctplhub.domain.errors import DomainError, NotFound, ValidationFailed
from ctplhub.domain.freshness import InsurerInfo, sources_and_caveats
from ctplhub.domain.identifiers import Plate, Vin, display_plate
from ctplhub.domain.instants import format_instant, format_optional
from ctplhub.domain.policy import parse_instant
from ctplhub.domain.vehicle import latest_claims, plate_holders
from ctplhub.services.ports import (
    AnswerReader,
    Clock,
    InsurerRecord,
    PersonalData,
    Signer,
    UnitOfWork,
    UnitOfWorkFactory,
)

_NOT_FOUND = "no vehicle matches this plate and verification factor"


@dataclass(frozen=True, slots=True)
class CoverageQuery:
    plate: object
    vin_last6: object = None
    owner_id_number: object = None
    at: object = None


def _normalise_factor(raw: object, field: str) -> str:
    if not isinstance(raw, str):
        raise ValidationFailed(f"{field} must be a string", details={"field": field})
    return unicodedata.normalize("NFKC", raw).replace(" ", "").upper()


def _resolve_vins(uow: UnitOfWork, plates: Sequence[str], at: datetime) -> dict[str, str]:
    """Plate → VIN at ``at`` for many plates in one set-based read."""
    holders = plate_holders(latest_claims(uow.events.claims_of_claimants(plates, at)))
    return {plate: holders[plate] for plate in plates if plate in holders}


class InsurerDirectory:
    """The insurer table, re-read at most once a second.

    Every answer needs every insurer's certification and watermark (§2.6), and the table
    changes a few times a day; reading it per query was a third of a query's database
    work. The database stays the only source of truth: an answer may lag a certification
    change or a sync by at most ``ttl_s`` (against a staleness threshold of 24 hours), and
    every process converges on its own.
    """

    def __init__(self, ttl_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic  # real elapsed time, whatever the answers' clock says
        self._read_at = -math.inf
        self._insurers: dict[str, InsurerInfo] = {}

    async def get(self, reader: AnswerReader) -> dict[str, InsurerInfo]:
        if self._stale():
            self._keep(await reader.insurers())
        return self._insurers

    def _stale(self) -> bool:
        now = self._monotonic()
        return not self._read_at <= now < self._read_at + self._ttl_s

    def _keep(self, records: Sequence[InsurerRecord]) -> None:
        self._insurers = {
            r.code: InsurerInfo(r.code, r.name, r.status, r.last_sync_at) for r in records
        }
        self._read_at = self._monotonic()


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
        uow: UnitOfWorkFactory,
        personal: PersonalData,
        signer: Signer,
        clock: Clock,
        *,
        stale_after: timedelta,
        reminder_window: timedelta,
        reader: AnswerReader,
        insurer_cache_s: float = 1.0,
    ) -> None:
        self._uow = uow
        self._reader = reader
        self._personal = personal
        self._signer = signer
        self._clock = clock
        self._stale_after = stale_after
        self._window = reminder_window
        self._insurers = InsurerDirectory(insurer_cache_s)

    def _instant(self, raw: object, now: datetime) -> datetime:
        return now if raw is None else parse_instant(raw, "at")

    def _ask(self, q: CoverageQuery) -> _Ask:
        now = self._clock()
        plate = Plate.parse(q.plate)
        at = self._instant(q.at, now)
        vin_last6 = None if q.vin_last6 is None else _normalise_factor(q.vin_last6, "vin_last6")
        owner_id = (
            None
            if q.owner_id_number is None
            else _normalise_factor(q.owner_id_number, "owner_id_number")
        )
        if vin_last6 is not None and owner_id is not None:
            raise ValidationFailed("give one verification factor: vin_last6 or owner_id_number")
        return _Ask(now, plate, at, vin_last6, owner_id)

    async def query(self, q: CoverageQuery) -> dict[str, Any]:
        """The full signed answer with a matching factor, else the short public one.

        Awaited on the server's event loop: the reads go through the ``AnswerReader``."""
        ask = self._ask(q)
        claims, states_by_vin = await self._reader.vehicle_snapshot(ask.plate.value, ask.at)
        vin = plate_holders(latest_claims(claims)).get(ask.plate.value)
        owner_index = (
            await self._reader.owner_index_of(vin) if vin and ask.owner_id is not None else None
        )
        self._check_factor(ask, vin, owner_index)
        insurers = await self._insurers.get(self._reader)
        return self._answer(ask, vin, states_by_vin, insurers)

    def _check_factor(self, ask: _Ask, vin: str | None, owner_index: bytes | None) -> None:
        """A wrong factor answers exactly like a plate that does not exist (§3)."""
        if not ask.verified:
            return
        if vin is None:
            raise NotFound(_NOT_FOUND)
        if ask.vin_last6 is not None:
            matches = hmac.compare_digest(vin[-6:].encode(), ask.vin_last6.encode())
        else:
            assert ask.owner_id is not None
            given = self._personal.blind_index(ask.owner_id)
            matches = owner_index is not None and hmac.compare_digest(owner_index, given)
        if not matches:
            raise NotFound(_NOT_FOUND)

    def _answer(
        self,
        ask: _Ask,
        vin: str | None,
        states_by_vin: Mapping[str, list[PolicyState]],
        insurers: Mapping[str, InsurerInfo],
    ) -> dict[str, Any]:
        states = states_by_vin.get(vin, []) if vin else []
        result = coverage_status(states, ask.at, reminder_window=self._window)
        sources, caveats = sources_and_caveats(
            insurers, {s.insurer_code for s in states}, result.status, ask.now, self._stale_after
        )
        if not ask.verified:
            return {
                "plate": ask.plate.display,
                "covered": result.status.covered,
                "status_class": result.status.status_class,
                "caveats": caveats,
            }
        assert vin is not None
        answer = {
            "answer_id": str(uuid.uuid4()),
            "as_of": format_instant(ask.now),
            "at": format_instant(ask.at),
            "plate": ask.plate.display,
            "vin_masked": Vin(vin).masked,
            **_status_fields(result, insurers),
            "sources": sources,
            "caveats": caveats,
        }
        return self._signer.sign(answer)

    def verify(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Bulk verification for police and regulators: one result per item, in order."""
        now = self._clock()
        parsed: list[tuple[str, str, datetime] | DomainError] = []
        for item in items:
            parsed.append(self._parse_item(item, now))
        good = [p for p in parsed if not isinstance(p, DomainError)]
        vin_of: dict[tuple[str, datetime], str] = {}
        with self._uow() as uow:
            plates = sorted(
                ((value, at) for kind, value, at in good if kind == "plate"), key=lambda p: p[1]
            )
            for at, group in groupby(plates, key=lambda p: p[1]):
                for plate, vin in _resolve_vins(uow, [p for p, _ in group], at).items():
                    vin_of[(plate, at)] = vin
            for kind, value, at in good:
                if kind == "vin":
                    vin_of[(value, at)] = value
            states = uow.policies.for_vins(sorted(set(vin_of.values())))
        results: list[dict[str, Any]] = []
        for item, p in zip(items, parsed, strict=True):
            if isinstance(p, DomainError):
                key = "vin" if isinstance(item, Mapping) and "vin" in item else "plate"
                raw = item.get(key) if isinstance(item, Mapping) else None
                results.append(
                    {
                        key: raw,
                        "at": item.get("at") if isinstance(item, Mapping) else None,
                        "covered": None,
                        "status": None,
                        "insurer_code": None,
                        "covered_until": None,
                        "error": p.as_dict(),
                    }
                )
                continue
            kind, value, at = p
            resolved = vin_of.get((value, at))
            result = coverage_status(
                states.get(resolved, []) if resolved else [], at, reminder_window=self._window
            )
            current = result.current_policy
            results.append(
                {
                    kind: display_plate(value) if kind == "plate" else value,
                    "at": format_instant(at),
                    "covered": result.status.covered,
                    "status": result.status.value,
                    "insurer_code": current.insurer_code if current else None,
                    "covered_until": format_optional(result.covered_until),
                }
            )
        return results

    def _parse_item(self, item: object, now: datetime) -> tuple[str, str, datetime] | DomainError:
        try:
            if not isinstance(item, Mapping):
                raise ValidationFailed("each item is an object with plate or vin")
            at = self._instant(item.get("at"), now)
            if item.get("vin") is not None:
                return ("vin", Vin.parse(item["vin"]).value, at)
            if item.get("plate") is not None:
                return ("plate", Plate.parse(item["plate"]).value, at)
            raise ValidationFailed("each item needs plate or vin")
        except DomainError as error:
            return error


def mask_policy_no(policy_no: str) -> str:
    """The last four characters, but never more than half of a short number."""
    return "…" + policy_no[-min(4, len(policy_no) // 2) :] if len(policy_no) > 1 else "…"


def _policy_view(state: PolicyState, insurers: Mapping[str, InsurerInfo]) -> dict[str, Any]:
    info = insurers.get(state.insurer_code)
    return {
        "insurer_code": state.insurer_code,
        "insurer_name": info.name if info else None,
        "policy_no_masked": mask_policy_no(state.policy_no),
        "coverage_start": format_instant(state.coverage_start),
        "coverage_end": format_instant(state.interval[1] if state.interval else state.coverage_end),
    }


def _status_fields(result: CoverageResult, insurers: Mapping[str, InsurerInfo]) -> dict[str, Any]:
    nxt = result.next_policy
    return {
        "status": result.status.value,
        "status_text": result.status.text_zh,
        "current_policy": _policy_view(result.current_policy, insurers)
        if result.current_policy
        else None,
        "next_policy": {
            "insurer_code": nxt.insurer_code,
            "coverage_start": format_instant(nxt.coverage_start),
            "coverage_end": format_instant(nxt.interval[1] if nxt.interval else nxt.coverage_end),
        }
        if nxt
        else None,
        "covered_until": format_optional(result.covered_until),
        "days_to_expiry": result.days_to_expiry,
        "lapsed_since": format_optional(result.lapsed_since),
        "days_lapsed": result.days_lapsed,
        "flags": {
            "duplicate_coverage": result.duplicate_coverage,
            "gaps": [
                {"from": format_instant(g.start), "to": format_instant(g.end)} for g in result.gaps
            ],
        },
    }
