"""Working days and the dispute deadline (DESIGN §10; ``domain/working_days.py``): Monday
to Friday in Beijing time, less the State Council's holidays, plus its make-up working
days, from the data file shipped with the package. The day of opening is never counted,
and the deadline is 24:00 of the last working day (民法典 第二百零一条, 第二百零三条)."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ctplhub.domain.instants import BEIJING
from ctplhub.domain.working_days import WorkingCalendar, china_calendar, parse_calendar


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def due(opened: str, days: int = 3) -> datetime:
    return china_calendar().add_working_days(bj(opened), days)


def test_the_shipped_file_holds_the_published_years() -> None:
    calendar = china_calendar()
    assert {2025, 2026} <= calendar.years
    assert len([d for d in calendar.holidays if d.year == 2025]) == 28
    assert len([d for d in calendar.holidays if d.year == 2026]) == 33
    # make-up working days are weekend days, and working days
    assert calendar.is_working_day(date(2025, 1, 26))  # a Sunday before the Spring Festival
    assert calendar.is_working_day(date(2026, 2, 28))  # a Saturday after it
    assert not calendar.is_working_day(date(2026, 2, 17))  # 正月初一
    assert not calendar.is_working_day(date(2025, 10, 8))  # a Wednesday of National Day
    assert not calendar.is_working_day(date(2025, 3, 8))  # an ordinary Saturday


def test_the_package_ships_the_data_file() -> None:
    pyproject = Path(__file__).parents[3] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    assert "domain/data/*.json" in data["tool"]["setuptools"]["package-data"]["ctplhub"]


def test_an_ordinary_week_counts_three_days_after_the_opening_day() -> None:
    # Monday 09:00: Tuesday, Wednesday, Thursday; due at 24:00 Thursday
    assert due("2025-03-10T09:00") == bj("2025-03-14T00:00")


def test_a_friday_evening_opening_runs_over_the_weekend() -> None:
    assert due("2025-03-07T20:00") == bj("2025-03-13T00:00")


def test_the_day_is_the_beijing_day_whatever_the_offset_given() -> None:
    # 16:30 UTC on Sunday is 00:30 on Monday in Beijing: Monday is the opening day
    opened = datetime(2025, 3, 9, 16, 30, tzinfo=UTC)
    assert china_calendar().add_working_days(opened, 3) == bj("2025-03-14T00:00")


def test_the_spring_festival_stops_the_clock() -> None:
    # 2026: the make-up Saturday 14 Feb counts, 15-23 Feb do not
    assert due("2026-02-13T10:00") == bj("2026-02-26T00:00")
    # 2025: opened the day before the holiday: 5, 6, 7 February
    assert due("2025-01-27T10:00") == bj("2025-02-08T00:00")


def test_a_make_up_saturday_is_a_working_day() -> None:
    # Thursday 9 Oct 2025: Friday 10, Saturday 11 (make-up), Monday 13
    assert due("2025-10-09T15:00") == bj("2025-10-14T00:00")


def test_an_opening_on_a_holiday_counts_from_the_first_working_day() -> None:
    # National Day 2025 runs to 8 October; 11 October is a make-up Saturday
    assert due("2025-10-03T11:00") == bj("2025-10-12T00:00")


def test_a_year_past_the_file_counts_monday_to_friday_only() -> None:
    calendar = china_calendar()
    assert not calendar.covers(date(2099, 1, 1))
    # Thursday 1 January 2099: Friday 2 counts (the file knows no New Year's Day there),
    # then Monday 5 and Tuesday 6
    assert due("2099-01-01T10:00") == bj("2099-01-07T00:00")
    opened, deadline = bj("2026-12-30T10:00"), due("2026-12-30T10:00")
    years = {d.year for d in calendar.days_counted(opened, deadline)}
    assert 2027 in years  # the service sees the deadline crossed into an unknown year


@pytest.mark.parametrize("days", [1, 5, 10])
def test_more_days_never_end_sooner(days: int) -> None:
    calendar = china_calendar()
    opened = bj("2026-09-24T12:00")
    assert calendar.add_working_days(opened, days) < calendar.add_working_days(opened, days + 1)


def test_at_least_one_day() -> None:
    with pytest.raises(ValueError):
        china_calendar().add_working_days(bj("2026-01-05T10:00"), 0)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({}, "years"),
        ({"years": {"2025": {"workdays": [{"date": "2025-03-10"}]}}}, "weekend"),
        (
            {"years": {"2025": {"holidays": [{"from": "2025-02-04", "to": "2025-01-28"}]}}},
            "does not fit",
        ),
        (
            {
                "years": {
                    "2025": {
                        "holidays": [{"from": "2025-03-08", "to": "2025-03-08"}],
                        "workdays": [{"date": "2025-03-08"}],
                    }
                }
            },
            "both",
        ),
    ],
)
def test_a_malformed_file_says_what_is_wrong(data: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_calendar(data)


def test_an_empty_calendar_is_monday_to_friday() -> None:
    plain = WorkingCalendar(frozenset(), frozenset(), frozenset())
    assert plain.add_working_days(bj("2025-10-03T10:00"), 3) == bj("2025-10-09T00:00")
