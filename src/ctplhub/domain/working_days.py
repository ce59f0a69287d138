"""Working days of mainland China, for the dispute deadline (DESIGN §10).

A day is a working day when it is Monday to Friday in Beijing time and not a public
holiday, or when it is an official make-up working day (调休上班, usually a weekend day
next to a long holiday). Holidays and make-up days come from the State Council's yearly
notice, kept in ``domain/data/cn_workdays.json`` (shipped with the package); a year is
added to that file when its notice is published.

A day in a year the file does not hold counts Monday to Friday only: the registry keeps
working past its data, and :meth:`WorkingCalendar.covers` lets the caller say so (the
dispute service logs a warning). docs/DECISIONS.md ("Disputes") records why.

Deadlines follow the Civil Code's rule for periods counted in days (民法典 第二百零一条,
第二百零三条): the day on which the period starts is not counted, and the period ends at
24:00 of its last day. So "three working days after an opening" ends at 00:00 Beijing
time on the day after the third working day that follows the opening's day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from ctplhub.domain.instants import BEIJING

DATA_FILE = "data/cn_workdays.json"
_SATURDAY = 5


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Holidays and make-up working days of the years in ``years``."""

    holidays: frozenset[date]
    workdays: frozenset[date]  # make-up working days (weekend days worked)
    years: frozenset[int]

    def covers(self, day: date) -> bool:
        """Whether the published schedule holds ``day``'s year."""
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < _SATURDAY and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The instant ``days`` working days after ``start`` end: 00:00 Beijing time of
        the day after the ``days``-th working day following ``start``'s own day (that
        day itself is not counted, whatever the hour)."""
        if days < 1:
            raise ValueError("a deadline is at least one working day")
        day = start.astimezone(BEIJING).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=BEIJING)

    def days_counted(self, start: datetime, end: datetime) -> list[date]:
        """The days between ``start``'s day (excluded) and ``end`` (excluded) that the
        deadline looked at: what :meth:`covers` must hold for the deadline to be exact."""
        first = start.astimezone(BEIJING).date() + timedelta(days=1)
        last = end.astimezone(BEIJING).date()
        return [first + timedelta(days=n) for n in range((last - first).days)]


def parse_calendar(data: Any) -> WorkingCalendar:
    """The calendar of the data file's JSON object; a malformed file raises ``ValueError``
    naming what is wrong (a test loads the shipped one)."""
    if not isinstance(data, dict) or not isinstance(data.get("years"), dict):
        raise ValueError('the working-day file needs an object "years"')
    holidays: set[date] = set()
    workdays: set[date] = set()
    years: set[int] = set()
    for key, year in data["years"].items():
        number = int(key)
        years.add(number)
        for span in year.get("holidays", ()):
            first, last = date.fromisoformat(span["from"]), date.fromisoformat(span["to"])
            if last < first or first.year != number:
                raise ValueError(f"holiday {span!r} does not fit year {number}")
            holidays.update(first + timedelta(days=n) for n in range((last - first).days + 1))
        for entry in year.get("workdays", ()):
            day = date.fromisoformat(entry["date"])
            if day.year != number or day.weekday() < _SATURDAY:
                raise ValueError(f"make-up working day {day} must be a weekend day of {number}")
            workdays.add(day)
    if holidays & workdays:
        raise ValueError("a day cannot be both a holiday and a make-up working day")
    return WorkingCalendar(frozenset(holidays), frozenset(workdays), frozenset(years))


@lru_cache(maxsize=1)
def china_calendar() -> WorkingCalendar:
    """The calendar shipped with the package (read once per process)."""
    text = resources.files("ctplhub.domain").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_calendar(json.loads(text))
