"""A deterministic demo fleet: realistic policy events for demos, the web UI and benchmarks.

Every vehicle plays one *story* (active, renewed at another insurer, surrendered, ...) told
relative to a given ``now``, so the fleet shows every coverage status whatever day the demo
runs. Vehicles are built one at a time from their index, each with its own seeded random
stream: events come out of a generator, so a million of them need no more memory than one
vehicle, and a sample vehicle can be rebuilt on its own to describe it. Plates, VINs and
policy numbers are bijections of the vehicle index, so they are unique by construction and
uniqueness needs no set of values seen so far.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.services import demo_data as data

BEIJING = timezone(timedelta(hours=8))
MAX_VEHICLES = 1_000_000

DEMO_INSURERS: tuple[tuple[str, str], ...] = (
    ("PICC", "中国人民财产保险股份有限公司"),
    ("PINGAN", "中国平安财产保险股份有限公司"),
    ("CPIC", "中国太平洋财产保险股份有限公司"),
    ("CHINALIFE", "中国人寿财产保险股份有限公司"),
    ("CCIC", "中国大地财产保险股份有限公司"),
)
_INSURERS = tuple(code for code, _ in DEMO_INSURERS)
_INSURER_WEIGHTS = (34, 24, 16, 14, 12)  # roughly the market shares


class Story(StrEnum):
    ACTIVE = "active"
    EXPIRING = "expiring"
    RENEWED_SAME = "renewed_same_insurer"
    RENEWED_SWITCH = "renewed_other_insurer"
    LAPSED = "lapsed"
    NEW_CAR = "new_car"
    REINSURED = "reinsured_after_lapse"
    SURRENDERED = "surrendered"
    CANCELLED = "cancelled"
    CANCELLED_REISSUED = "cancelled_and_reissued"
    PLATE_CHANGED = "plate_changed"
    OWNER_CHANGED = "owner_changed"
    DUPLICATE = "duplicate_cover"
    NEVER_INSURED = "never_insured"  # only in samples: a vehicle without any event


_S = Story
EXPECTED_STATUS: Mapping[Story, CoverageStatus] = {
    _S.ACTIVE: CoverageStatus.ACTIVE,
    _S.EXPIRING: CoverageStatus.EXPIRING_SOON,
    _S.RENEWED_SAME: CoverageStatus.RENEWED,
    _S.RENEWED_SWITCH: CoverageStatus.RENEWED,
    _S.LAPSED: CoverageStatus.LAPSED,
    _S.NEW_CAR: CoverageStatus.PENDING_START,
    _S.REINSURED: CoverageStatus.PENDING_START,
    _S.SURRENDERED: CoverageStatus.LAPSED,
    _S.CANCELLED: CoverageStatus.NO_RECORD,
    _S.CANCELLED_REISSUED: CoverageStatus.ACTIVE,
    _S.PLATE_CHANGED: CoverageStatus.ACTIVE,
    _S.OWNER_CHANGED: CoverageStatus.ACTIVE,
    _S.DUPLICATE: CoverageStatus.ACTIVE,
    _S.NEVER_INSURED: CoverageStatus.NO_RECORD,
}
_WEIGHTS = {  # per cent of the fleet
    _S.ACTIVE: 44, _S.EXPIRING: 8, _S.RENEWED_SAME: 10, _S.RENEWED_SWITCH: 5, _S.LAPSED: 7,
    _S.NEW_CAR: 3, _S.REINSURED: 1, _S.SURRENDERED: 3, _S.CANCELLED: 1,
    _S.CANCELLED_REISSUED: 1, _S.PLATE_CHANGED: 3, _S.OWNER_CHANGED: 4, _S.DUPLICATE: 1,
}  # fmt: skip
_STORIES = tuple(_WEIGHTS)
_CUMULATIVE = tuple(itertools.accumulate(_WEIGHTS.values()))
_NO_HISTORY = frozenset({_S.NEW_CAR, _S.CANCELLED, _S.CANCELLED_REISSUED, _S.NEVER_INSURED})
# Sample vehicles, spread over the fleet: every story, some with earlier years of history.
_SHOWCASE: tuple[tuple[Story, int], ...] = (
    (_S.ACTIVE, 0), (_S.ACTIVE, 2), (_S.EXPIRING, 0), (_S.EXPIRING, 1), (_S.RENEWED_SAME, 0),
    (_S.RENEWED_SAME, 2), (_S.RENEWED_SWITCH, 1), (_S.LAPSED, 0), (_S.LAPSED, 2),
    (_S.NEW_CAR, 0), (_S.REINSURED, 1), (_S.SURRENDERED, 1), (_S.CANCELLED, 0),
    (_S.CANCELLED_REISSUED, 0), (_S.PLATE_CHANGED, 0), (_S.OWNER_CHANGED, 1), (_S.DUPLICATE, 0),
)  # fmt: skip
_NEVER_INSURED_SAMPLES = 2


@dataclass(frozen=True)
class SampleVehicle:
    plate: str  # display form, e.g. "苏E·12345"
    vin_last6: str
    expected_status: str  # a CoverageStatus value at the fleet's ``now``
    story: str


@dataclass
class DemoFleet:
    events: Iterator[dict[str, Any]]  # a generator: iterate it once
    samples: list[SampleVehicle]


def generate_fleet(vehicles: int = 20_000, *, now: datetime, seed: int = 7) -> DemoFleet:
    """The fleet's events (lazily) and about twenty sample vehicles with known statuses."""
    events = iter_fleet_events(vehicles, now=now, seed=seed)
    samples = [_sample(i, *told, now, seed) for i, told in _showcase(vehicles).items()]
    samples += [
        _sample(vehicles + n, Story.NEVER_INSURED, 0, now, seed)
        for n in range(_NEVER_INSURED_SAMPLES)
    ]
    return DemoFleet(events=events, samples=samples)


@dataclass(frozen=True, slots=True)
class FleetVehicle:
    """A vehicle of the fleet as a roadside camera sees it: its plate now (display form),
    the region its policies are written in, and its expected status at the fleet's now."""

    plate: str
    region_code: str
    expected_status: CoverageStatus


def fleet_vehicle(index: int, *, vehicles: int, now: datetime, seed: int = 7) -> FleetVehicle:
    """Vehicle ``index`` of a fleet of ``vehicles``, rebuilt on its own (the ANPR
    simulator samples plates without building the fleet); an index from ``vehicles`` on
    is a vehicle the fleet never reported (``NO_RECORD``)."""
    if index >= vehicles:
        timeline, _ = _build(index, now, seed, (Story.NEVER_INSURED, 0))
        return FleetVehicle(timeline.plate, timeline.region.region_code, CoverageStatus.NO_RECORD)
    showcase = _showcase(vehicles)
    timeline, _ = _build(index, now, seed, showcase.get(index))
    return FleetVehicle(
        timeline.plate, timeline.region.region_code, EXPECTED_STATUS[timeline.story]
    )


def iter_fleet_events(vehicles: int, *, now: datetime, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Every event of the fleet, vehicle by vehicle, each vehicle's in ``occurred_at`` order."""
    if not 0 <= vehicles <= MAX_VEHICLES:
        raise ValueError(f"vehicles must be between 0 and {MAX_VEHICLES}, got {vehicles}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return _events(vehicles, now, seed, _showcase(vehicles))


def _events(
    vehicles: int, now: datetime, seed: int, showcase: dict[int, tuple[Story, int]]
) -> Iterator[dict[str, Any]]:
    for index in range(vehicles):
        timeline, _ = _build(index, now, seed, showcase.get(index))
        yield from timeline.sorted_events()


def _showcase(vehicles: int) -> dict[int, tuple[Story, int]]:
    count = min(len(_SHOWCASE), vehicles)
    return {n * vehicles // count: _SHOWCASE[n] for n in range(count)}


def _sample(index: int, story: Story, earlier: int, now: datetime, seed: int) -> SampleVehicle:
    timeline, told = _build(index, now, seed, (story, earlier))
    status = EXPECTED_STATUS[story].value
    return SampleVehicle(timeline.plate, timeline.vin[-6:], status, told)


def _build(
    index: int, now: datetime, seed: int, forced: tuple[Story, int] | None
) -> tuple[_Timeline, str]:
    rng = random.Random(seed * 2**21 + index)
    if forced is None:
        story = rng.choices(_STORIES, cum_weights=_CUMULATIVE)[0]
        earlier = 0 if story in _NO_HISTORY else rng.choices((0, 1, 2), weights=(5, 3, 2))[0]
    else:
        story, earlier = forced
    timeline = _Timeline(index, seed, rng, now, story is not Story.NEW_CAR, earlier)
    timeline.story = story
    return timeline, _play(story, timeline, earlier)


def _play(story: Story, t: _Timeline, earlier: int) -> str:
    """Write one vehicle's policies for ``story``; return the story in one line."""
    rng, day = t.rng, t.day
    if story is Story.ACTIVE:
        p = t.chain(day(-rng.randint(0, 330)), earlier)
        return f"covered at {p.insurer} until {p.end}"
    if story is Story.EXPIRING:
        p = t.chain(_year_before(day(rng.randint(1, 29))), earlier)
        return f"cover at {p.insurer} ends {p.end}, not renewed yet"
    if story in (Story.RENEWED_SAME, Story.RENEWED_SWITCH):
        p = t.chain(_year_before(day(rng.randint(1, 60))), earlier)
        same = story is Story.RENEWED_SAME
        q = t.issue(
            p.insurer if same else t.other_than(p.insurer), p.end, at=t.recently(25), prior=p
        )
        if same:
            return f"renewed early at the same insurer ({p.insurer}, renew event)"
        return f"renewed at another insurer ({p.insurer} → {q.insurer})"
    if story is Story.LAPSED:
        p = t.chain(_year_before(day(-rng.randint(1, 200))), earlier)
        return f"lapsed since {p.end} (脱保), last insured at {p.insurer}"
    if story is Story.NEW_CAR:
        q = t.issue(t.home, day(rng.randint(1, 5)), at=t.recently(3))
        return f"new car, cover at {q.insurer} starts {q.start}"
    if story is Story.REINSURED:
        p = t.chain(_year_before(day(-rng.randint(10, 120))), earlier)
        q = t.issue(t.other_than(p.insurer), day(rng.randint(1, 5)), at=t.recently(4))
        return f"lapsed since {p.end}, re-insured at {q.insurer} from {q.start}"
    if story is Story.SURRENDERED:
        p = t.chain(day(-rng.randint(60, 330)), earlier)
        cut = _midnight(day(-rng.randint(1, (t.today - p.start).days - 30)))
        t.amend(
            p, "surrender", t.office_hours(cut.date() - timedelta(days=1)), effective_at=_stamp(cut)
        )
        return f"surrendered at {p.insurer} from {cut.date()} (退保, vehicle scrapped)"
    if story in (Story.CANCELLED, Story.CANCELLED_REISSUED):
        start = day(-rng.randint(10, 300))
        p = t.issue(t.home, start, at=t.office_hours(start - timedelta(days=rng.randint(3, 10))))
        cancelled_at = p.issued_at + timedelta(hours=rng.randint(1, 24))
        t.amend(p, "cancel", cancelled_at)
        if story is Story.CANCELLED:
            return f"only policy ({p.insurer}) cancelled: void from inception (注销)"
        t.issue(t.home, start, at=cancelled_at + timedelta(minutes=rng.randint(10, 120)))
        return f"policy at {p.insurer} cancelled (注销) and re-issued with corrected data"
    if story in (Story.PLATE_CHANGED, Story.OWNER_CHANGED):
        p = t.chain(day(-rng.randint(30, 330)), earlier)
        at = t.between(_midnight(p.start) + timedelta(days=1), t.now - timedelta(hours=1))
        if story is Story.OWNER_CHANGED:
            t.amend(p, "endorse", at, **t.new_owner())
            return f"sold mid-term (过户): endorsement at {p.insurer} names the new owner"
        old = t.plate
        t.amend(p, "endorse", at, plate=t.change_plate())
        return f"plate changed by endorsement ({old} → {t.plate})"
    if story is Story.DUPLICATE:
        p = t.chain(day(-rng.randint(60, 300)), earlier)
        second = p.start + timedelta(days=rng.randint(20, (t.today - p.start).days))
        q = t.issue(t.other_than(p.insurer), second)
        return f"duplicate cover (重复投保): {p.insurer} and {q.insurer} overlap"
    return "never insured: no policy on record"


@dataclass
class _Policy:
    insurer: str
    start: date
    end: date
    issued_at: datetime
    latest: dict[str, Any]  # the event of the highest version


class _Timeline:
    """One vehicle, its owner and the events of its policies."""

    story: Story

    def __init__(
        self, index: int, seed: int, rng: random.Random, now: datetime, used: bool, earlier: int
    ) -> None:
        self.index, self.seed, self.rng, self.now = index, seed, rng, now
        self.today = now.astimezone(BEIJING).date()
        self.region = rng.choices(data.REGIONS, weights=data.REGION_WEIGHTS)[0]
        self.profile = rng.choices(data.PROFILES, weights=data.PROFILE_WEIGHTS)[0]
        self.home = rng.choices(_INSURERS, weights=_INSURER_WEIGHTS)[0]
        self.compact = rng.random() < 0.7  # how the insurer's system writes plates
        nev_share = 0.22 if self.profile.vehicle_type == "passenger_small" else 0.3
        wmis = self.profile.wmis
        nev = all(w in data.NEV_WMIS for w in wmis) or rng.random() < nev_share
        large = self.profile.vehicle_type != "passenger_small"
        self.plate = data.plate(self.region, index, seed, nev=nev, large_vehicle=large)
        makers = [w for w in wmis if (w in data.NEV_WMIS) == nev] or list(wmis)
        age = earlier + rng.randint(0, 2) if used else 0
        self.vin = data.vin(rng, index, seed, rng.choice(makers), self.today.year - age)
        self.owner = self.new_owner()
        self._events: list[tuple[datetime, dict[str, Any]]] = []

    def new_owner(self) -> dict[str, str]:
        return data.owner(self.rng, self.profile, self.region, self.today)

    def change_plate(self) -> str:
        """A new ordinary plate, from the top of the key space that first plates never use."""
        key = data.ORDINARY_SPACE - 1 - self.index
        self.plate = data.plate(self.region, key, self.seed, nev=False, large_vehicle=False)
        return self._plate_text()

    def _plate_text(self) -> str:
        return self.plate.replace("·", "") if self.compact else self.plate

    def day(self, offset: int) -> date:
        return self.today + timedelta(days=offset)

    def other_than(self, insurer: str) -> str:
        return self.rng.choice([code for code in _INSURERS if code != insurer])

    def between(self, low: datetime, high: datetime) -> datetime:
        return low + timedelta(seconds=self.rng.randint(0, int((high - low).total_seconds())))

    def recently(self, days: int) -> datetime:
        return self.between(self.now - timedelta(days=days), self.now)

    def office_hours(self, day: date) -> datetime:
        """Some time in a working day, but never after ``now``."""
        at = _midnight(day) + timedelta(seconds=self.rng.randint(8 * 3600 + 1800, 18 * 3600))
        return at if at <= self.now else self.between(self.now - timedelta(hours=6), self.now)

    def chain(self, start: date, earlier: int) -> _Policy:
        """The current policy from ``start``, after ``earlier`` yearly policies without gap."""
        if (start.month, start.day) == (2, 29):
            start -= timedelta(days=1)  # so that a year back and forth lands on the same day
        policy = self.issue(self.home, _add_years(start, -earlier))
        for years_back in range(earlier - 1, -1, -1):
            switch = self.rng.random() < 0.2
            insurer = self.other_than(policy.insurer) if switch else policy.insurer
            policy = self.issue(insurer, _add_years(start, -years_back), prior=policy)
        return policy

    def issue(
        self, insurer: str, start: date, *, at: datetime | None = None, prior: _Policy | None = None
    ) -> _Policy:
        """Version 1 of a new policy: a ``renew`` if it follows ``prior`` at the same insurer."""
        at = at or self.office_hours(start - timedelta(days=self.rng.randint(1, 10)))
        end = _add_years(start, 1)
        claims_free = sum(1 for _, e in self._events if e["event_type"] in ("issue", "renew"))
        factor = Decimal("1.0") - Decimal("0.1") * min(claims_free, 3)
        if claims_free and self.rng.random() < 0.15:
            factor = Decimal("1.1")  # a claim last year
        number = data.POLICY_NO_FORMATS[insurer].format(
            year=at.astimezone(BEIJING).year,
            region=self.region.region_code,
            seq=self.index * 8 + len({e["policy_no"] for _, e in self._events}),
        )
        renew = prior is not None and prior.insurer == insurer
        event: dict[str, Any] = {
            "insurer_code": insurer,
            "policy_no": number,
            "event_type": "renew" if renew else "issue",
            "version": 1,
            "occurred_at": _stamp(at),
            "plate": self._plate_text(),
            "vin": self.vin,
            "vehicle_type": self.profile.vehicle_type,
            "use_nature": self.profile.use_nature,
            **self.owner,
            "coverage_start": _stamp(_midnight(start)),
            "coverage_end": _stamp(_midnight(end)),
            "premium": f"{self.profile.base_premium * factor:.2f}",
            "region_code": self.region.region_code,
        }
        if renew and prior is not None:
            event["prior_policy_no"] = prior.latest["policy_no"]
        self._events.append((at, event))
        return _Policy(insurer, start, end, at, event)

    def amend(self, policy: _Policy, event_type: str, at: datetime, **changes: str) -> None:
        """The next version of ``policy``: the whole state again, with ``changes``."""
        event = {
            **policy.latest,
            **changes,
            "event_type": event_type,
            "version": policy.latest["version"] + 1,
            "occurred_at": _stamp(at),
        }
        policy.latest = event
        self._events.append((at, event))

    def sorted_events(self) -> list[dict[str, Any]]:
        return [event for _, event in sorted(self._events, key=lambda pair: pair[0])]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), BEIJING)


def _stamp(at: datetime) -> str:
    return at.astimezone(BEIJING).isoformat(timespec="seconds")


def _add_years(day: date, years: int) -> date:
    """Same calendar day ``years`` on; 29 February becomes 1 March (the later day, so a
    policy written from it never ends before the end that was aimed at)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _year_before(end: date) -> date:
    return _add_years(end, -1)
