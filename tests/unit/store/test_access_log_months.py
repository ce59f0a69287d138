"""The access log's months on PostgreSQL (store/access_log_partitions.py): a month is a
calendar month of UTC, whatever the offset of the instant, and December is followed by
January of the next year. (Their bounds in the database: test_access_log_partitions.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from ctplhub.store.access_log_partitions import month_of, next_month, partition_name

BEIJING = timezone(timedelta(hours=8))


def test_a_month_is_one_of_utc() -> None:
    assert month_of(datetime(2026, 12, 1, 3, 0, tzinfo=BEIJING)) == date(2026, 11, 1)
    assert month_of(datetime(2026, 12, 1, 8, 0, tzinfo=BEIJING)) == date(2026, 12, 1)
    assert month_of(datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == date(2026, 12, 1)


def test_months_follow_each_other_across_a_year() -> None:
    assert next_month(date(2026, 11, 1)) == date(2026, 12, 1)
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)


def test_a_month_is_named_by_its_year_and_month() -> None:
    assert partition_name(date(2027, 1, 1)) == "access_log_2027_01"
