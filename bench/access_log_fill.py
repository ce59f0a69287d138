"""An access log of realistic size for the privacy benchmark (``--log-rows``).

The access log's cost on PostgreSQL grows with its size (docs/PERFORMANCE.md §7: 98.9 %
on an empty log, 86-87 % at 0.6-0.9M rows, whose random-keyed index outgrew the buffer
cache), so a figure means little without the size of the log it was taken on. This
fills the log up to a number of entries spread evenly over the past 12 months, as a
registry's would be, and makes sure the current month's partition holds a month's share
of them (a twelfth) whatever the day: each insert touches only that month's index, so
its size is what the figure depends on, and the end of a month is the worst case. The
rows go through the application's own store: binary ``COPY`` into the
monthly partitions on PostgreSQL (each month made first, as the writer makes it), its
multi-row ``INSERT`` into the log's own file on SQLite. A log that already holds enough
is left alone, so ``--reuse`` runs do not fill it again.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from common import Home, count_rows, db_url, log
from psycopg import sql

from ctplhub.services.ports import AccessRow
from ctplhub.store.access_log_partitions import month_of, partition_name
from ctplhub.store.repositories.access_log import SqlAccessLogStore
from ctplhub.store.schema import make_engine

SPAN = timedelta(days=365)
_BATCH = 50_000
# Who reads, as the application records them (docs/DECISIONS.md, "Access log"): mostly
# owners' verified queries, some short answers and listings, police and agents.
_READERS = (
    *[("anonymous", "owner", "coverage_query")] * 14,
    ("anonymous", "owner", "coverage_status_lookup"),
    ("anonymous", "owner", "access_log_view"),
    ("bench-police", "police", "bulk_verify"),
    ("bench-police", "police", "accident"),
    ("bench-regulator", "regulator", "bulk_verify"),
    ("bench-agent", "agent", "hotline"),
)


def synthetic_rows(
    first: int, last: int, total: int, start: datetime, span: timedelta
) -> list[AccessRow]:
    """Entries ``first`` to ``last`` (excluded) of ``total`` spread evenly over ``span``
    from ``start``, each of a random vehicle."""
    step = span / total
    return [
        AccessRow(start + step * n, *_READERS[n % len(_READERS)], os.urandom(32), f"{n:016x}")
        for n in range(first, last)
    ]


def _rows_since(home: Home, since: datetime) -> int:
    if home.engine != "postgresql":
        return 0 if since > datetime.now(UTC) else count_rows(home, "access_log") or 0
    with psycopg.connect(db_url(home.db), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM access_log WHERE at >= %s", (since,)).fetchone()
    return int(row[0]) if row else 0


def fill_access_log(home: Home, wanted: int, now: datetime | None = None) -> int:
    """Add entries until the log holds ``wanted`` over the past 12 months and the current
    month holds ``wanted / 12``; returns how many the log holds."""
    now = now or datetime.now(UTC)
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    held = count_rows(home, "access_log") or 0
    in_month = _rows_since(home, month_start)
    this_month = max(0, wanted // 12 - in_month)
    earlier = max(0, wanted - held - this_month)
    if not (this_month or earlier):
        return held
    log(
        f"  filling the access log: {earlier:,} entries over the past 12 months, "
        f"{this_month:,} in this month's partition ..."
    )
    engine = make_engine(home.url)
    try:
        store = SqlAccessLogStore(engine)
        for total, start, span in (
            (earlier, now - SPAN, month_start - (now - SPAN)),
            (this_month, month_start, now - month_start),
        ):
            for first in range(0, total, _BATCH):
                last = min(first + _BATCH, total)
                store.append(synthetic_rows(first, last, total, start, span))
    finally:
        engine.dispose()
    return count_rows(home, "access_log") or 0


def current_partition(home: Home, now: datetime | None = None) -> dict[str, Any] | None:
    """The current month's partition of the log on PostgreSQL: its name, rows and size
    with its indexes (what each insert touches); ``None`` on SQLite."""
    if home.engine != "postgresql":
        return None
    name = partition_name(month_of(now or datetime.now(UTC)))
    with psycopg.connect(db_url(home.db), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT pg_total_relation_size(to_regclass(%s)), "
                "pg_indexes_size(to_regclass(%s)), (SELECT count(*) FROM {})"
            ).format(sql.Identifier(name)),
            (name, name),
        ).fetchone()
    total, indexes, estimate = row if row else (None, None, None)
    return {"partition": name, "bytes": total, "index_bytes": indexes, "rows": estimate}
