"""Data-quality flags on ingest (issue 10 item 6; docs/DECISIONS.md, "Data-quality flags").

An event that looks wrong is still accepted (the insurer's record is the record; refusing
it would only hide a real policy from the police), but it is flagged: the batch line's
result names its flags, and the insurer (or a regulator) lists them at ``GET
/v1/insurers/{code}/flags``. The rules:

- ``vin_plate_changed``: the VIN was reported before (by anyone) with a different plate,
  and this event is not an ``endorse`` (批改, the way a plate change is reported);
- ``plate_on_two_vehicles``: another vehicle's policy in force (its head version) carries
  this plate over a period that overlaps this event's;
- ``period_too_long``: the period is longer than the law allows. CTPL is written for one
  year (交强险条例: 保险期间为1年); the bound is 367 days: 366 in a span with 29 February,
  plus one day of grace for cover that starts when it is issued (即时生效) and ends at
  期满日二十四时. Short-term policies (temporary plates, 短期) are shorter, never longer;
- ``premium_outlier``: the premium is below 0.2× or above 5× the insurer's median for
  that vehicle type, over the platform's latest 50,000 events, once the insurer has at
  least 20 events of that type among them. (The statutory base premium, with the
  floating-rate and regional factors, spans less than 0.5× to 1.5×; a factor of five
  either way is a typo, a wrong vehicle type, or a premium in fen rather than yuan.)

Where and when: not on the ingest path. Ingest only stores and appends to the ledger; the
worker's minute pass (and ``ctplhub flags run``) flags what was appended since its
watermark, in ledger order, 2,000 events a transaction: one read of the events, one read
of their vehicles' history (two indexed probes per event), the flags written and the
watermark moved in one commit that succeeds for one worker only (compare-and-set), so a
crash or a second worker never loses or doubles a flag. The ledger's leaf order is
commit order (its append lock is held to the commit), so no event slips behind the
watermark. The pass was about a quarter of PostgreSQL's ingest work when it ran after
every chunk (docs/PERFORMANCE.md §12); the medians are kept per process and re-read
when the event table has grown by a tenth (at least 20 events) and 30 s have passed, or
after ten minutes.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from ctplhub.domain.errors import InsurerMismatch, UnknownInsurer, ValidationFailed
from ctplhub.domain.identifiers import display_plate
from ctplhub.domain.policy import EventType, VehicleType
from ctplhub.domain.records import fast_init
from ctplhub.services.ports import Clock

MAX_PERIOD = timedelta(days=367)
PREMIUM_LOW, PREMIUM_HIGH = Decimal("0.2"), Decimal("5")
NORM_SAMPLE = 50_000
NORM_MIN_EVENTS = 20
NORM_MAX_AGE_S = 600.0
NORM_MIN_AGE_S = 30.0  # never re-read sooner: a bulk load would re-read every chunk
CODES = ("vin_plate_changed", "plate_on_two_vehicles", "period_too_long", "premium_outlier")
PASS_EVENTS = 2_000  # events a transaction of the pass


@fast_init
@dataclass(frozen=True, slots=True)
class FlagSubject:
    """What the rules read of a stored event: no personal field."""

    event_id: int
    insurer_code: str
    policy_no: str
    version: int
    event_type: EventType
    plate: str
    vin: str
    vehicle_type: VehicleType
    coverage_start: datetime
    coverage_end: datetime
    effective_at: datetime | None
    premium: Decimal


@dataclass(frozen=True, slots=True)
class FlagRun:
    """One ``flag_pending``: events examined, flags written, the next leaf to examine."""

    examined: int
    flagged: int
    watermark: int


@fast_init
@dataclass(frozen=True, slots=True)
class PlateHolder:
    """A policy head whose event carries ``plate``: the vehicle and its cover."""

    plate: str
    vin: str
    start: datetime
    end: datetime  # the surrender cut applied


@fast_init
@dataclass(frozen=True, slots=True)
class FlagContext:
    """What the store knows about a chunk's vehicles before the chunk: per VIN, the plate
    of its newest event; the policy heads carrying the chunk's plates; the newest id."""

    prior_plates: dict[str, str]
    holders: list[PlateHolder]
    newest_event_id: int


@fast_init
@dataclass(frozen=True, slots=True)
class NewFlag:
    insurer_code: str
    policy_no: str
    version: int
    event_id: int
    code: str
    message: str
    flagged_at: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class FlagRecord:
    flag_id: int
    policy_no: str
    version: int
    code: str
    message: str
    flagged_at: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class FlagPage:
    insurer_code: str
    flags: tuple[FlagRecord, ...]
    next_cursor: int | None


class QualityFlagStore(Protocol):
    """``store/repositories/quality_flags.py``; blocking calls."""

    def context(self, vins: Sequence[str], plates: Sequence[str], before_id: int) -> FlagContext:
        """The VINs' latest plates and the plates' policy heads among events stored
        before ``before_id`` (the chunk's first), and the newest event id."""
        ...

    def premium_sample(self, size: int) -> tuple[int, list[tuple[str, str, Decimal]]]:
        """The newest event id and (insurer, vehicle_type, premium) of the latest ``size``."""
        ...

    def watermark(self) -> int:
        """The ledger index of the next event to examine."""
        ...

    def pending(self, from_leaf: int, limit: int) -> list[FlagSubject]:
        """The events of ledger leaves ``from_leaf`` onwards, at most ``limit``, in leaf
        order."""
        ...

    def record(self, flags: Sequence[NewFlag], from_leaf: int, to_leaf: int) -> bool:
        """Keep ``flags`` and move the watermark from ``from_leaf`` to ``to_leaf`` in one
        commit; ``False`` (nothing kept) when another pass moved it first."""
        ...

    def page(self, insurer_code: str, before: int | None, limit: int) -> list[FlagRecord]: ...
    def insurer_exists(self, insurer_code: str) -> bool: ...


class _Norms:
    """Each insurer's median premium per vehicle type, per process (thread-safe)."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._medians: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]] = {}
        self._sampled_id = -1
        self._sampled_at = -NORM_MAX_AGE_S

    def medians(
        self, store: QualityFlagStore, newest: int
    ) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
        """Per (insurer, vehicle type): the median premium and the bounds around it."""
        with self._lock:
            age = self._monotonic() - self._sampled_at
            grown = newest - self._sampled_id >= max(NORM_MIN_EVENTS, self._sampled_id // 10)
            due = (grown and age >= NORM_MIN_AGE_S) or age > NORM_MAX_AGE_S
            if self._sampled_id < 0 or (due and newest != self._sampled_id):
                self._sampled_id, rows = store.premium_sample(NORM_SAMPLE)
                groups: dict[tuple[str, str], list[Decimal]] = {}
                for insurer, vehicle_type, premium in rows:
                    groups.setdefault((insurer, vehicle_type), []).append(Decimal(premium))
                medians = {
                    key: statistics.median(values)
                    for key, values in groups.items()
                    if len(values) >= NORM_MIN_EVENTS
                }
                self._medians = {
                    key: (median, median * PREMIUM_LOW, median * PREMIUM_HIGH)
                    for key, median in medians.items()
                    if median > 0
                }
                self._sampled_at = self._monotonic()
            return self._medians


def _interval(event: FlagSubject) -> tuple[datetime, datetime] | None:
    if event.event_type is EventType.CANCEL:
        return None
    end = event.coverage_end
    if event.event_type is EventType.SURRENDER and event.effective_at is not None:
        end = min(end, event.effective_at)
    return (event.coverage_start, end) if end > event.coverage_start else None


def period_flag(event: FlagSubject) -> str | None:
    if event.coverage_end - event.coverage_start <= MAX_PERIOD:
        return None
    days = (event.coverage_end - event.coverage_start) / timedelta(days=1)
    return (
        f"the period is {days:.1f} days; CTPL is written for one year "
        f"(at most {MAX_PERIOD.days} days: 366 across 29 February, plus a day of grace)"
    )


def premium_flag(event: FlagSubject, norm: tuple[Decimal, Decimal, Decimal] | None) -> str | None:
    """``norm``: the median and the bounds it allows (precomputed: two comparisons)."""
    if norm is None or norm[1] <= event.premium <= norm[2]:
        return None
    median = norm[0]
    ratio = event.premium / median
    return (
        f"premium {event.premium} is {ratio:.2f}× this insurer's median of {median:.2f} for "
        f"{event.vehicle_type.value} (expected between {PREMIUM_LOW}× and {PREMIUM_HIGH}×)"
    )


class QualityFlags:
    def __init__(
        self,
        store: QualityFlagStore,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._norms = _Norms(monotonic)

    def flag_pending(self, max_events: int | None = None) -> FlagRun:
        """Flag what the ledger gained since the watermark, in ledger order, until caught
        up (or past ``max_events``)."""
        examined = flagged = 0
        watermark = self._store.watermark()
        while max_events is None or examined < max_events:
            subjects = self._store.pending(watermark, PASS_EVENTS)
            if not subjects:
                break
            found = self._flags_of(subjects)
            if self._store.record(found, watermark, watermark + len(subjects)):
                examined += len(subjects)
                flagged += len(found)
            watermark = self._store.watermark()  # ours, or the other pass's
        return FlagRun(examined, flagged, watermark)

    def _flags_of(self, subjects: Sequence[FlagSubject]) -> list[NewFlag]:
        first_id = min(s.event_id for s in subjects)
        vins = sorted({s.vin for s in subjects})
        plates = sorted({s.plate for s in subjects})
        known = self._store.context(vins, plates, first_id)
        last_plate = known.prior_plates
        holders: dict[str, list[PlateHolder]] = {}
        for holder in known.holders:
            holders.setdefault(holder.plate, []).append(holder)
        medians = self._norms.medians(self._store, known.newest_event_id)
        now = self._clock()
        found: list[NewFlag] = []
        for subject in subjects:
            found.extend(
                NewFlag(
                    subject.insurer_code,
                    subject.policy_no,
                    subject.version,
                    subject.event_id,
                    code,
                    message,
                    now,
                )
                for code, message in self._rules(subject, last_plate, holders, medians)
            )
            # Later events of the pass see this one as history.
            last_plate[subject.vin] = subject.plate
            span = _interval(subject)
            if span is not None:
                holders.setdefault(subject.plate, []).append(
                    PlateHolder(subject.plate, subject.vin, *span)
                )
        return found

    @staticmethod
    def _rules(
        event: FlagSubject,
        last_plate: dict[str, str],
        holders: dict[str, list[PlateHolder]],
        medians: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]],
    ) -> list[tuple[str, str]]:
        messages: list[tuple[str, str]] = []
        plate, vin = event.plate, event.vin
        before = last_plate.get(vin)
        if before is not None and before != plate and event.event_type is not EventType.ENDORSE:
            messages.append(
                (
                    "vin_plate_changed",
                    f"this VIN was last reported with plate {display_plate(before)}; this "
                    f"{event.event_type.value} names {display_plate(plate)} (a plate change "
                    "is reported as an endorse)",
                )
            )
        span = _interval(event)
        if span is not None:
            for other in holders.get(plate, ()):
                if other.vin != vin and other.start < span[1] and span[0] < other.end:
                    messages.append(
                        (
                            "plate_on_two_vehicles",
                            f"plate {display_plate(plate)} is also on another vehicle whose "
                            "policy is in force over an overlapping period",
                        )
                    )
                    break
        if (period := period_flag(event)) is not None:
            messages.append(("period_too_long", period))
        median = medians.get((event.insurer_code, event.vehicle_type.value))
        if (premium := premium_flag(event, median)) is not None:
            messages.append(("premium_outlier", premium))
        return messages

    # -- the list ---------------------------------------------------------------------
    def page(
        self, code: str, *, caller: str | None, cursor: object = None, limit: object = None
    ) -> FlagPage:
        """``GET /v1/insurers/{code}/flags``: newest first; ``caller`` (an insurer) must
        be ``code``; ``None`` is a regulator, who may read any insurer's."""
        if caller is not None and caller != code:
            raise InsurerMismatch(f"this key belongs to insurer {caller}")
        size = _bounded_int(limit, "limit", default=100, low=1, high=1000)
        before = None if cursor is None else _bounded_int(cursor, "cursor", low=1)
        if caller is None and not self._store.insurer_exists(code):
            raise UnknownInsurer(f"no insurer {code}")
        rows = self._store.page(code, before, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return FlagPage(code, tuple(rows), rows[-1].flag_id if more and rows else None)


def _bounded_int(
    raw: object, field: str, *, default: int | None = None, low: int, high: int | None = None
) -> int:
    if raw is None and default is not None:
        return default
    text = str(raw)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ValidationFailed(
            f"{field} must be a whole number", details=[{"field": field, "problem": "not a number"}]
        )
    value = int(text)
    if value < low or (high is not None and value > high):
        span = f"from {low}" + (f" to {high}" if high is not None else "")
        raise ValidationFailed(
            f"{field} must be {span}", details=[{"field": field, "problem": "out of range"}]
        )
    return value
