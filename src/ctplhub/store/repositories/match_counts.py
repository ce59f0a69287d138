"""``SqlMatchCounts``: the daily match's counts in SQL, set-wise (DESIGN §11; issue 12).

The same rules as the Python path (``services/match_counts.py`` for the uninsured,
``Enforcement._unmatched`` for the unmatched, held together by a Hypothesis property on
both engines), in one statement over the whole register instead of 5,000-VIN batches
read through the coverage read path:

- **the register at T**: each VIN's line with the latest ``as_of`` up to T
  (``register_state_at``): PostgreSQL's ``DISTINCT ON (vin) … ORDER BY vin, as_of DESC``,
  SQLite's ``max(as_of) … GROUP BY vin`` (whose other columns are documented to come
  from the row holding the maximum);
- **uninsured**: those lines that say ``registered`` in a region under the prefix, with
  no policy head of the VIN covering T (``covered_at``: the ruling version of §2.4 is the
  head row; a cancel covers nothing, a surrender ends at ``effective_at``, the interval is
  half-open), counted by the line's region;
- **unmatched**: each insurer's policies in force at T (``VehicleRegister.in_force``'s
  rule), against the line of their VIN at T: none → ``vin_not_registered``; a
  ``registered`` line whose plate is not the plate of the policy's ruling event →
  ``plate_differs``; scrapped or deregistered → neither.

The register at T is computed once and read by both halves (a CTE referred to twice,
which PostgreSQL materialises). The statement reads whole tables by design: hash joins
and one sort, with ``work_mem`` raised for its transaction only so that they stay in
memory (docs/DECISIONS.md, "Daily match in SQL").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Engine,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on

from ctplhub.domain.policy import EventType
from ctplhub.domain.register import RegisterStatus
from ctplhub.services.register_ports import MatchTotals
from ctplhub.store.maintenance import INGEST_TABLES, REGISTER_TABLES, SqlPlannerStatistics
from ctplhub.store.tables import UTCDateTime, insurers, policies, policy_events, register_lines

# Memory for the statement's sort and hash tables (its transaction only): a million
# register lines sort in about 100 MB; spilling to disk doubled the time.
_PG_WORK_MEM = "256MB"

_CANCEL = EventType.CANCEL.value
_SURRENDER = EventType.SURRENDER.value
_REGISTERED = RegisterStatus.REGISTERED.value


def covering(at: ColumnElement[datetime]) -> ColumnElement[bool]:
    """A policy head covers ``at`` (``domain.coverage.covered_at``): not a cancel,
    ``start <= at < end``, and a surrender's ``effective_at`` after ``at``."""
    p = policies.c
    return and_(
        p.event_type != _CANCEL,
        p.coverage_start <= at,
        p.coverage_end > at,
        or_(p.event_type != _SURRENDER, p.effective_at.is_(None), p.effective_at > at),
    )


def in_force(at: ColumnElement[datetime]) -> ColumnElement[bool]:
    """``SqlVehicleRegister.in_force``'s rule, word for word."""
    p = policies.c
    return and_(
        p.event_type != _CANCEL,
        p.coverage_start <= at,
        p.coverage_end > at,
        or_(p.effective_at.is_(None), p.effective_at > at),
    )


def _prefix_range(prefix: str) -> tuple[str, str] | None:
    if not prefix:
        return None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


class SqlMatchCounts:
    """Implements ``services.register_ports.MatchCounts`` on both engines."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._statistics = SqlPlannerStatistics(engine, REGISTER_TABLES + INGEST_TABLES)

    def count(self, at: datetime, prefix: str) -> MatchTotals:
        # Statistics the tables never had, or that a load since made stale (a register
        # fed in small batches, a database restored), are taken first: the plan below
        # is chosen by the tables' sizes. Fresh ones cost one catalogue read.
        self._statistics.refresh(1)
        postgres = self._engine.dialect.name == "postgresql"
        statement = self._statement(at, prefix, postgres)
        uninsured: dict[str, int] = {}
        unmatched: dict[str, dict[str, int]] = {}
        with self._engine.begin() as conn:
            if postgres:
                conn.execute(text(f"SET LOCAL work_mem = '{_PG_WORK_MEM}'"))
            codes = list(conn.execute(select(insurers.c.code).order_by(insurers.c.code)).scalars())
            for kind, key, first, second in conn.execute(statement):
                if kind == "u":
                    uninsured[str(key)] = int(first)
                else:
                    unmatched[str(key)] = {
                        "vin_not_registered": int(first or 0),
                        "plate_differs": int(second or 0),
                    }
        by_insurer = {
            code: unmatched.get(code, {"vin_not_registered": 0, "plate_differs": 0})
            for code in codes
        }
        return MatchTotals(uninsured, by_insurer)

    def _statement(self, at: datetime, prefix: str, postgres: bool) -> CompoundSelect[Any]:
        r, p, e = register_lines.c, policies.c, policy_events.c
        instant = literal(at, UTCDateTime())
        if postgres:
            latest = (
                select(r.vin, r.plate, r.region_code, r.status)
                .where(r.as_of <= instant)
                .ext(distinct_on(r.vin))
                .order_by(r.vin, r.as_of.desc())
                .cte("latest")
            )
        else:
            latest = (
                select(r.vin, r.plate, r.region_code, r.status, func.max(r.as_of).label("as_of"))
                .where(r.as_of <= instant)
                .group_by(r.vin)
                .cte("latest")
            )
        line = latest.c
        wanted = [line.status == _REGISTERED]
        span = _prefix_range(prefix)
        if span is not None:
            wanted += [line.region_code >= span[0], line.region_code < span[1]]
        covered = exists().where(p.vin == line.vin, covering(instant))
        uninsured = (
            select(
                literal("u", String()).label("kind"),
                line.region_code.label("key"),
                func.count().label("first"),
                literal(0).label("second"),
            )
            .where(*wanted, ~covered)
            .group_by(line.region_code)
        )
        missing = case((line.vin.is_(None), 1), else_=0)
        differs = case(
            (and_(line.status == _REGISTERED, line.plate != e.plate), 1),
            else_=0,
        )
        unmatched = (
            select(
                literal("m", String()),
                p.insurer_code,
                func.sum(missing),
                func.sum(differs),
            )
            .select_from(
                policies.join(policy_events, e.id == p.event_id).outerjoin(
                    latest, line.vin == p.vin
                )
            )
            .where(in_force(instant))
            .group_by(p.insurer_code)
        )
        return union_all(uninsured, unmatched)
