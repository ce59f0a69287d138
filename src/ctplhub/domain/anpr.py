"""Roadside camera reads and the alerts they raise (DESIGN §12), as pure values.

A camera sends ``{"read_id", "camera_id", "region_code", "plate", "seen_at",
"confidence"}``. :func:`parse_read` turns one message into a :class:`PlateRead` or says
why it is dropped (counted, never stored): a body that is not such an object, a
confidence under the threshold, a plate §2.1 refuses, a bad instant. The 24-hour rule
(:func:`one_per_day`) is a pure function of the alerts already kept and the candidates,
so that it is the same in the consumer and in its tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import orjson

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.errors import DomainError
from ctplhub.domain.identifiers import Plate
from ctplhub.domain.instants import format_instant, parse_instant

ALERT_STATUSES = frozenset(
    {CoverageStatus.PENDING_START, CoverageStatus.LAPSED, CoverageStatus.NO_RECORD}
)
ONE_ALERT_PER = timedelta(hours=24)  # per plate and region, by seen_at
KEEP_ALERTS = timedelta(days=30)
_REGION = re.compile(r"[0-9]{6}")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class DropReason(StrEnum):
    MALFORMED = "malformed"  # not a read object, a missing field, a bad id or region
    LOW_CONFIDENCE = "low_confidence"
    INVALID_PLATE = "invalid_plate"
    INVALID_INSTANT = "invalid_instant"
    TOO_OLD = "too_old"  # seen before the alerts' retention: an alert would be purged at once


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One read worth checking."""

    read_id: str
    camera_id: str
    region_code: str
    plate: Plate
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: DropReason


@dataclass(frozen=True, slots=True)
class Alert:
    """An uncovered vehicle seen by a camera (the §12 alert)."""

    alert_id: str
    read_id: str
    camera_id: str
    region_code: str
    plate: Plate
    seen_at: datetime
    status: CoverageStatus
    lapsed_since: datetime | None

    def fields(self) -> dict[str, str | None]:
        """The alert as it is published and listed (§12): plate in display form,
        instants in Beijing time."""
        return {
            "alert_id": self.alert_id,
            "read_id": self.read_id,
            "camera_id": self.camera_id,
            "region_code": self.region_code,
            "plate": self.plate.display,
            "seen_at": format_instant(self.seen_at),
            "status": self.status.value,
            "lapsed_since": format_instant(self.lapsed_since) if self.lapsed_since else None,
        }


_DROPPED = {reason: Dropped(reason) for reason in DropReason}
_INVALID = object()  # a plate or an instant remembered as refused
REMEMBERED = 50_000  # plates, and instants, a parser remembers before it starts afresh


class ReadParser:
    """:func:`parse_read` for a stream of reads: the plates and ``seen_at`` texts it met
    lately are remembered, parsed or refused, so that a plate read again (or a second
    that many reads share) is not normalised again. At most ``REMEMBERED`` of each are
    kept; then the memory starts afresh. ``Plate`` and ``datetime`` are immutable, so
    reads share them safely."""

    __slots__ = ("_instants", "_min_confidence", "_plates")

    def __init__(self, min_confidence: float) -> None:
        self._min_confidence = min_confidence
        self._plates: dict[str, object] = {}
        self._instants: dict[str, object] = {}

    def parse(self, payload: bytes | bytearray | str, now: datetime) -> PlateRead | Dropped:
        """The read a camera's message carries, or why it is dropped."""
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:  # a ValueError: also bad UTF-8
            return _DROPPED[DropReason.MALFORMED]
        if not isinstance(body, dict):
            return _DROPPED[DropReason.MALFORMED]
        read_id, camera_id = body.get("read_id"), body.get("camera_id")
        region, confidence = body.get("region_code"), body.get("confidence")
        if not (
            isinstance(read_id, str)
            and _ID.fullmatch(read_id)
            and isinstance(camera_id, str)
            and _ID.fullmatch(camera_id)
            and isinstance(region, str)
            and _REGION.fullmatch(region)
            and isinstance(confidence, int | float)
            and not isinstance(confidence, bool)
            and 0 <= confidence <= 1
        ):
            return _DROPPED[DropReason.MALFORMED]
        if confidence < self._min_confidence:
            return _DROPPED[DropReason.LOW_CONFIDENCE]
        plate = self._plate(body.get("plate"))
        if not isinstance(plate, Plate):
            return _DROPPED[DropReason.INVALID_PLATE]
        seen_at = self._instant(body.get("seen_at"))
        if not isinstance(seen_at, datetime):
            return _DROPPED[DropReason.INVALID_INSTANT]
        if seen_at < now - KEEP_ALERTS:
            return _DROPPED[DropReason.TOO_OLD]
        return PlateRead(read_id, camera_id, region, plate, seen_at)

    def _plate(self, raw: object) -> object:
        if not isinstance(raw, str):
            return _INVALID
        known = self._plates.get(raw)
        if known is None:
            try:
                known = Plate.parse(raw)
            except DomainError:
                known = _INVALID
            if len(self._plates) >= REMEMBERED:
                self._plates.clear()
            self._plates[raw] = known
        return known

    def _instant(self, raw: object) -> object:
        if not isinstance(raw, str):
            return _INVALID
        known = self._instants.get(raw)
        if known is None:
            try:
                known = parse_instant(raw, "seen_at")
            except DomainError:
                known = _INVALID
            if len(self._instants) >= REMEMBERED:
                self._instants.clear()
            self._instants[raw] = known
        return known


def parse_read(payload: bytes, *, min_confidence: float, now: datetime) -> PlateRead | Dropped:
    """The read a camera's message carries, or why it is dropped (one read;
    :class:`ReadParser` for many)."""
    return ReadParser(min_confidence).parse(payload, now)


def one_per_day(
    kept: Iterable[tuple[str, str, datetime]], candidates: Sequence[Alert]
) -> list[Alert]:
    """The candidates that may be raised: no two alerts of one plate in one region (kept
    ones, given as ``(plate, region_code, seen_at)``, included) closer than 24 h by
    ``seen_at``. Candidates are taken in ``seen_at`` order (then ``read_id``), so the
    outcome does not depend on the order reads arrived in within a batch."""
    taken: dict[tuple[str, str], list[datetime]] = {}
    for plate, region, seen_at in kept:
        taken.setdefault((plate, region), []).append(seen_at)
    raised: list[Alert] = []
    for alert in sorted(candidates, key=lambda a: (a.seen_at, a.read_id)):
        times = taken.setdefault((alert.plate.value, alert.region_code), [])
        if all(abs(alert.seen_at - t) >= ONE_ALERT_PER for t in times):
            times.append(alert.seen_at)
            raised.append(alert)
    return raised
