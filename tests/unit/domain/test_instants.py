"""Instants (DESIGN §2.5): an offset is required, and only 2000-01-01 to 2100-01-01
(Beijing time, end excluded) is accepted, so no date sum the rules do can overflow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.coverage import PolicyState, coverage_status
from ctplhub.domain.errors import InvalidInstant
from ctplhub.domain.instants import EARLIEST, END_OF_RANGE, format_instant, parse_instant
from ctplhub.domain.policy import EventType


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:00:00-01:00",  # past year 9999 in UTC: overflowed before
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "1999-12-31T23:59:59+08:00",
        "1999-12-31T15:59:59Z",  # the same instant in UTC
        "2100-01-01T00:00:00+08:00",  # the end is excluded
        "2099-12-31T16:00:00Z",
        "2026-01-01T00:00:00",  # no offset
        "2026-01-01",
        "yesterday",
        "",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(InvalidInstant) as caught:
        parse_instant(text, "at")
    assert caught.value.code == "invalid_instant"
    assert caught.value.details == {"field": "at"}


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2000-01-01T00:00:00+08:00", datetime(1999, 12, 31, 16, tzinfo=UTC)),
        (
            "2099-12-31T23:59:59.999999+08:00",
            datetime(2099, 12, 31, 15, 59, 59, 999999, tzinfo=UTC),
        ),
        ("2026-11-25T02:00:00Z", datetime(2026, 11, 25, 2, tzinfo=UTC)),
    ],
)
def test_accepted_at_the_edges(text: str, utc: datetime) -> None:
    assert parse_instant(text, "at") == utc


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.integers(-23 * 60, 23 * 60))  # fmt: skip
def test_any_offset_anywhere_is_parsed_or_refused_never_crashes(
    naive: datetime, offset_minutes: int
) -> None:
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{naive.isoformat()}{sign}{hours:02d}:{minutes:02d}"
    try:
        at = parse_instant(text, "at")
    except InvalidInstant:
        return
    assert EARLIEST <= at < END_OF_RANGE
    # Every accepted instant survives the rules' date sums and formatting.
    policy = PolicyState("PICC", "P1", 1, EventType.ISSUE, EARLIEST, END_OF_RANGE)
    coverage_status([policy], at)
    format_instant(at)
