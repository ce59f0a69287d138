"""The monthly partitions of the access log on PostgreSQL (migration 0008; DESIGN §5.3).

``access_log`` there is partitioned by RANGE (``at``), one partition a calendar month of
UTC named ``access_log_YYYY_MM``: its ``(vehicle_key, at)`` index is keyed by an HMAC,
so every insert lands on a random leaf, and one index over the whole log outgrew the
buffer cache at about a million rows (docs/PERFORMANCE.md §7). A month's index is small,
and the owner's listing (``at >= since``) reads only the months it covers.

There is no DEFAULT partition (rows of a month in it would block making that month
later), so a month must exist before a row of it is written. :class:`Months` makes it on
demand: the store asks it before each batch, with a cache of the months known to exist,
so a batch of a known month costs one set lookup. A missing month is made in a short
transaction of its own by the database function ``access_log_make_month`` (migration
0008), which takes a transaction-level advisory lock first: two processes that meet a
new month at once make it once, the second finding it made. ``ctplhub init`` (and the
migration) make the current and the next month ahead of time, so the writer normally
never makes one.

The function is ``SECURITY DEFINER`` (it runs as the log's owner, who ran the
migrations): attaching a partition needs the parent's ownership, which the application's
database role should not have (whoever owns the log can drop its append-only triggers;
docs/DECISIONS.md, "Access log"). It makes a month as ``CREATE TABLE ... (LIKE
access_log)`` then ``ATTACH PARTITION``, not ``CREATE TABLE ... PARTITION OF``:
attaching locks the parent in SHARE UPDATE EXCLUSIVE mode, which lets other processes'
inserts and the owners' listings go on, where ``PARTITION OF`` takes an ACCESS EXCLUSIVE
lock on the whole log. Attaching builds the parent's indexes on the new table and
clones its row-level append-only trigger.

Old months can be detached and dropped by an operator (``ALTER TABLE access_log DETACH
PARTITION access_log_2025_01; DROP TABLE access_log_2025_01``); nothing here removes one
(docs/DECISIONS.md, "Access log partitions").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from operator import itemgetter

from sqlalchemy import Connection, Engine, text

from ctplhub.services.ports import AccessRow

PARENT = "access_log"
_AT = itemgetter(0)


def month_of(at: datetime) -> date:
    """The first day of ``at``'s calendar month in UTC."""
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT}_{month.year:04d}_{month.month:02d}"


def is_attached(conn: Connection, month: date) -> bool:
    found = conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits "
            "WHERE inhparent = CAST(:parent AS regclass) AND inhrelid = to_regclass(:name))"
        ),
        {"parent": PARENT, "name": partition_name(month)},
    ).scalar_one()
    return bool(found)


def ensure_month(conn: Connection, month: date) -> bool:
    """Make ``month``'s partition unless it exists; ``True`` when made. The advisory lock
    the function takes is held until ``conn``'s transaction ends."""
    made = conn.execute(text("SELECT access_log_make_month(:month)"), {"month": month})
    return bool(made.scalar_one())


class Months:
    """The months of ``access_log`` known to exist, made when missing (PostgreSQL only)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: set[date] = set()
        self._lock = threading.Lock()

    def ensure_for(self, rows: Sequence[AccessRow]) -> None:
        """Make sure each month of the rows' instants (their first field) has a partition.

        The writer's batches are seconds of entries, so nearly always of one month: only
        the oldest and newest instants are looked at then (in C, not a Python loop per row)."""
        if not rows:
            return
        first = month_of(min(map(_AT, rows)))
        last = month_of(max(map(_AT, rows)))
        if first == last:
            if first not in self._known:
                self.ensure([first])
            return
        months = {month_of(at) for at in map(_AT, rows)}
        self.ensure(months - self._known)

    def ensure(self, months: Iterable[date]) -> None:
        missing = sorted(set(months) - self._known)
        if not missing:
            return
        with self._lock:  # one thread of this process at a time; the advisory lock: all
            with self._engine.connect() as conn:
                unknown = [m for m in missing if not is_attached(conn, m)]
            if unknown:
                with self._engine.begin() as conn:
                    for month in unknown:
                        ensure_month(conn, month)
            self._known.update(missing)

    def forget(self) -> None:
        """Check every month again from now on: after a write refused, e.g. because an
        operator detached a month this process had seen."""
        self._known.clear()
