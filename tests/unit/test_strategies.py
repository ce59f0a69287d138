"""The fuzzer's data is what it claims to be (``tests/strategies.py``): the valid values
pass the domain's own checks and the near misses do not. Without this pin a change of a
rule would quietly turn the fuzzer's "realistic" cases into ones refused at the door."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import find, given, settings

from ctplhub.domain.errors import InvalidPlate, InvalidVin, ValidationFailed
from ctplhub.domain.identifiers import IdNumber, Plate, Vin
from ctplhub.domain.instants import EARLIEST, END_OF_RANGE, parse_instant
from ctplhub.domain.policy import parse_event
from strategies import (
    instants_in_range,
    near_miss_plates,
    plates,
    policy_events,
    resident_ids,
    rfc3339,
    usccs,
    vins,
    wrong_check_vins,
)


@given(plates())
def test_plates_parse(raw: str) -> None:
    Plate.parse(raw)


@given(near_miss_plates())
def test_near_miss_plates_do_not(raw: str) -> None:
    with pytest.raises(InvalidPlate):
        Plate.parse(raw)


@given(vins(), wrong_check_vins())
def test_vins_carry_their_check_digit(good: str, bad: str) -> None:
    Vin.parse(good)
    with pytest.raises(InvalidVin):
        Vin.parse(bad)


@given(resident_ids(), usccs())
def test_id_numbers_carry_their_check_character(resident: str, uscc: str) -> None:
    IdNumber.parse(resident, "resident_id")
    IdNumber.parse(uscc, "uscc")


@given(instants_in_range().flatmap(rfc3339))
def test_instants_in_range_are_accepted(raw: str) -> None:
    assert EARLIEST <= parse_instant(raw, "at") < END_OF_RANGE


def test_instants_reach_within_a_few_days_of_each_bound() -> None:
    near = timedelta(days=3)
    find(instants_in_range(), lambda value: value - EARLIEST < near)
    find(instants_in_range(), lambda value: END_OF_RANGE - value < near)


@settings(max_examples=200)
@given(policy_events(near_misses=False))
def test_policy_events_without_near_misses_parse(event: dict[str, object]) -> None:
    try:
        parse_event(event, insurer_code="PICC")
    except ValidationFailed as error:  # pragma: no cover - the message says which rule
        pytest.fail(f"{error.code}: {error.message}")
