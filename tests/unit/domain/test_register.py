"""The vehicle register's lines (DESIGN §11, ``domain/register.py``): parsing and
normalising, the line's identity, and the status at an instant, whatever the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.errors import InvalidInstant, InvalidPlate, InvalidVin, ValidationFailed
from ctplhub.domain.register import (
    RegisterLine,
    RegisterStatus,
    parse_register_line,
    region_prefix,
    register_state_at,
)

VIN = "LSVAU218XN2183294"


def raw(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "vin": VIN,
        "plate": "苏E·12345",
        "vehicle_type": "passenger_small",
        "region_code": "320505",
        "status": "registered",
        "as_of": "2025-01-10T09:00:00+08:00",
    }
    base.update(overrides)
    return base


def test_a_line_is_normalised_and_equal_forms_are_one_line() -> None:
    line = parse_register_line(raw())
    assert (line.vin, line.plate, line.status) == (VIN, "苏E12345", RegisterStatus.REGISTERED)
    assert line.as_of == datetime(2025, 1, 10, 1, tzinfo=UTC)
    same = parse_register_line(
        raw(plate="苏e 12345", vin=" lsvau218xn2183294", as_of="2025-01-10T01:00:00Z")
    )
    assert same.content_hash == line.content_hash
    assert parse_register_line(raw(status="scrapped")).content_hash != line.content_hash


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"region_code": "020505"}, ValidationFailed),
        ({"region_code": "32050"}, ValidationFailed),
        ({"region_code": 320505}, ValidationFailed),
        ({"status": "stolen"}, ValidationFailed),
        ({"vehicle_type": "tank"}, ValidationFailed),
        ({"plate": "使12345"}, InvalidPlate),
        ({"vin": VIN[:-1] + "5"}, InvalidVin),
        ({"as_of": "2025-01-10"}, InvalidInstant),
        ({"as_of": "1999-12-31T00:00:00+08:00"}, InvalidInstant),
        ({"colour": "red"}, ValidationFailed),
        ({"plate": ""}, ValidationFailed),
    ],
)
def test_a_bad_line_says_what_is_wrong(change: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_register_line(raw(**change))


def test_a_missing_field_is_named() -> None:
    body = raw()
    del body["status"]
    with pytest.raises(ValidationFailed) as caught:
        parse_register_line(body)
    assert caught.value.details == {"fields": ["status"]}


def line(days: int, status: RegisterStatus = RegisterStatus.REGISTERED) -> RegisterLine:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return RegisterLine(VIN, "苏E12345", "truck", "320505", status, start + timedelta(days=days))


@given(st.permutations([line(0), line(10, RegisterStatus.SCRAPPED), line(5)]))
def test_the_status_at_an_instant_is_the_latest_line_up_to_it_in_any_order(
    lines: list[RegisterLine],
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert register_state_at(lines, start - timedelta(seconds=1)) is None
    assert register_state_at(lines, start) == line(0)
    assert register_state_at(lines, start + timedelta(days=7)) == line(5)
    assert register_state_at(lines, start + timedelta(days=10)) == line(10, RegisterStatus.SCRAPPED)


def test_a_region_prefix_is_up_to_six_digits() -> None:
    assert region_prefix("") == ""
    assert region_prefix("3205") == "3205"
    for bad in ("3205051", "32a", None, 3205):
        with pytest.raises(ValidationFailed):
            region_prefix(bad)
