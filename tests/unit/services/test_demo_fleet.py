"""The demo fleet (services/demo_fleet): every event valid and plausible, identifiers
unique, the same fleet for the same seed, and sample vehicles whose status at ``now`` is
really the one they claim when the events go through the status algorithm."""

from __future__ import annotations

import re
import tracemalloc
from collections import defaultdict
from collections.abc import Generator, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ctplhub.domain.coverage import CoverageResult, CoverageStatus, PolicyState, coverage_status
from ctplhub.domain.identifiers import Plate
from ctplhub.domain.policy import EVENT_FIELDS, EventType, PolicyEvent, parse_event
from ctplhub.services.demo_fleet import (
    DEMO_INSURERS,
    MAX_VEHICLES,
    generate_fleet,
    iter_fleet_events,
)

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 15, 10, 30, 12, 345678, tzinfo=BEIJING)
VEHICLES = 2_000
REGION_PREFIX = {
    "京": "11", "沪": "31", "粤": "44", "苏": "32", "浙": "33", "川": "51", "鄂": "42",
    "鲁": "37", "渝": "50", "湘": "43", "闽": "35", "陕": "61",
}  # fmt: skip


@pytest.fixture(scope="module")
def raw_events() -> list[dict[str, Any]]:
    return list(iter_fleet_events(VEHICLES, now=NOW))


@pytest.fixture(scope="module")
def events(raw_events: list[dict[str, Any]]) -> list[PolicyEvent]:
    return [parse_event(raw) for raw in raw_events]


@pytest.fixture(scope="module")
def by_vin(events: list[PolicyEvent]) -> dict[str, list[PolicyEvent]]:
    grouped: dict[str, list[PolicyEvent]] = defaultdict(list)
    for event in events:
        grouped[event.vin.value].append(event)
    return grouped


def status_of(events: Iterable[PolicyEvent], at: datetime = NOW) -> CoverageResult:
    """Fold the events as the registry does: each policy at its highest version."""
    heads: dict[tuple[str, str], PolicyEvent] = {}
    for event in events:
        key = (event.insurer_code, event.policy_no)
        if key not in heads or event.version > heads[key].version:
            heads[key] = event
    states = [
        PolicyState(
            e.insurer_code,
            e.policy_no,
            e.version,
            e.event_type,
            e.coverage_start,
            e.coverage_end,
            e.effective_at,
        )
        for e in heads.values()
    ]
    return coverage_status(states, at)


def test_every_event_is_in_the_json_format_and_parses(raw_events: list[dict[str, Any]]) -> None:
    assert len(raw_events) > VEHICLES
    for raw in raw_events:
        assert list(raw) == [field for field in EVENT_FIELDS if field in raw]
        for field in ("occurred_at", "coverage_start", "coverage_end"):
            assert raw[field].endswith("+08:00")
        assert re.fullmatch(r"1[3-9][0-9]{9}", raw["owner_phone"])
        assert re.fullmatch(r"[0-9]{3,4}\.[0-9]{2}", raw["premium"])
        if raw["event_type"] in ("issue", "renew"):  # later versions repeat the whole state
            assert ("prior_policy_no" in raw) == (raw["event_type"] == "renew")
        assert ("effective_at" in raw) == (raw["event_type"] == "surrender")
        parse_event(raw)


def test_events_are_never_in_the_future_and_issues_precede_cover(
    events: list[PolicyEvent],
) -> None:
    for event in events:
        assert event.occurred_at <= NOW
        if event.version == 1:
            assert event.event_type in (EventType.ISSUE, EventType.RENEW)
            assert event.occurred_at <= event.coverage_start
        if event.effective_at is not None:
            assert event.coverage_start < event.effective_at <= NOW


def test_cover_runs_a_year_from_beijing_midnight(events: list[PolicyEvent]) -> None:
    for event in events:
        start = event.coverage_start.astimezone(BEIJING)
        end = event.coverage_end.astimezone(BEIJING)
        assert start.time() == end.time() == datetime.min.time()
        assert end.year == start.year + 1
        assert (end.month, end.day) in ((start.month, start.day), (3, 1))


def test_versions_rise_by_one_and_nothing_follows_a_final_event(
    events: list[PolicyEvent],
) -> None:
    policies: dict[tuple[str, str], list[PolicyEvent]] = defaultdict(list)
    for event in events:
        policies[(event.insurer_code, event.policy_no)].append(event)
    for versions in policies.values():
        versions.sort(key=lambda e: e.version)
        assert [e.version for e in versions] == list(range(1, len(versions) + 1))
        assert [e.occurred_at for e in versions] == sorted(e.occurred_at for e in versions)
        assert not any(e.event_type.is_final for e in versions[:-1])
        assert len({e.vin for e in versions}) == 1


def test_plates_and_vins_are_unique_across_the_fleet(
    by_vin: dict[str, list[PolicyEvent]],
) -> None:
    assert len(by_vin) == VEHICLES
    assert len({vin[-6:] for vin in by_vin}) == VEHICLES
    holders: dict[str, set[str]] = defaultdict(set)
    for vin, vehicle_events in by_vin.items():
        for event in vehicle_events:
            holders[event.plate.value].add(vin)
    assert all(len(vins) == 1 for vins in holders.values())
    assert len(holders) > VEHICLES  # plate changes bring second plates


def test_the_fleet_mixes_regions_plate_kinds_owners_and_event_types(
    raw_events: list[dict[str, Any]], events: list[PolicyEvent]
) -> None:
    provinces = {event.plate.value[0] for event in events}
    assert set("京沪粤苏浙川鄂鲁") <= provinces
    for event in events:
        assert REGION_PREFIX[event.plate.value[0]] == event.region_code[:2]
        assert event.insurer_code in dict(DEMO_INSURERS)
    kinds = [event.plate.kind for event in events]
    assert set(kinds) == {"ordinary", "new_energy_small", "new_energy_large"}
    assert 0.1 < (len(kinds) - kinds.count("ordinary")) / len(kinds) < 0.3
    assert {raw["plate"][2] == "·" for raw in raw_events} == {True, False}
    assert {event.owner_id_type.value for event in events} == {"resident_id", "uscc"}
    assert {event.event_type for event in events} == set(EventType)


def test_every_status_occurs_in_the_fleet(by_vin: dict[str, list[PolicyEvent]]) -> None:
    results = [status_of(vehicle_events) for vehicle_events in by_vin.values()]
    counts = {status: 0 for status in CoverageStatus}
    for result in results:
        counts[result.status] += 1
    assert all(counts.values()), counts
    assert max(counts, key=lambda status: counts[status]) is CoverageStatus.ACTIVE
    assert any(result.duplicate_coverage for result in results)
    renewals = {
        result.next_policy.event_type
        for result in results
        if result.status is CoverageStatus.RENEWED and result.next_policy is not None
    }
    assert renewals == {EventType.RENEW, EventType.ISSUE}  # same and another insurer


def test_every_sample_has_the_status_it_claims(
    raw_events: list[dict[str, Any]], by_vin: dict[str, list[PolicyEvent]]
) -> None:
    fleet = generate_fleet(VEHICLES, now=NOW)
    assert list(fleet.events) == raw_events
    by_last6 = {vin[-6:]: vehicle_events for vin, vehicle_events in by_vin.items()}
    for sample in fleet.samples:
        vehicle_events = by_last6.get(sample.vin_last6, [])
        assert status_of(vehicle_events).status == sample.expected_status, sample
        assert sample.plate == Plate.parse(sample.plate).display
        if vehicle_events:
            latest = max(vehicle_events, key=lambda e: e.occurred_at)
            assert latest.plate.display == sample.plate, sample
        else:
            assert all(e.plate.display != sample.plate for v in by_vin.values() for e in v)


def test_samples_show_every_status_and_every_story() -> None:
    samples = generate_fleet(VEHICLES, now=NOW).samples
    assert 15 <= len(samples) <= 25
    assert {sample.expected_status for sample in samples} == set(CoverageStatus)
    stories = " | ".join(sample.story for sample in samples)
    for kind in (
        "same insurer", "another insurer", "lapsed", "new car", "re-insured", "surrendered",
        "cancelled", "re-issued", "plate changed", "new owner", "duplicate", "never insured",
    ):  # fmt: skip
        assert kind in stories
    assert len({sample.vin_last6 for sample in samples}) == len(samples)


def test_the_same_seed_gives_the_same_fleet() -> None:
    first = generate_fleet(300, now=NOW, seed=3)
    again = generate_fleet(300, now=NOW, seed=3)
    other = generate_fleet(300, now=NOW, seed=4)
    first_events = list(first.events)
    assert first_events == list(again.events)
    assert first.samples == again.samples
    assert first_events != list(other.events)
    assert first.samples != other.samples


def test_a_small_fleet_still_has_samples_and_none_for_no_vehicles() -> None:
    assert len(generate_fleet(5, now=NOW).samples) == 5 + 2
    assert list(iter_fleet_events(0, now=NOW)) == []


def test_events_stream_from_a_generator_in_little_memory() -> None:
    huge = iter_fleet_events(100_000, now=NOW)
    assert isinstance(huge, Generator)
    parse_event(next(huge))
    huge.close()

    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_fleet_events(3_000, now=NOW))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 3_000
    assert peak < 1_000_000  # a list of these events would take several megabytes
    # (Its speed is measured by bench/, not asserted here: timings fail on a busy machine.)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        iter_fleet_events(10, now=datetime(2026, 3, 15))
    with pytest.raises(ValueError, match="vehicles"):
        iter_fleet_events(MAX_VEHICLES + 1, now=NOW)
    with pytest.raises(ValueError, match="vehicles"):
        generate_fleet(-1, now=NOW)
