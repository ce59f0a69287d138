"""Data-quality flags (issue 10 item 6): the reads the rules need and the flags kept
(``services.quality_flags.QualityFlagStore``). Each call is its own short transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Executable

from ctplhub.domain.policy import EventType, VehicleType
from ctplhub.services.quality_flags import (
    FlagContext,
    FlagRecord,
    FlagSubject,
    NewFlag,
    PlateHolder,
)
from ctplhub.store.tables import (
    UTCDateTime,
    insurers,
    ledger_leaves,
    policies,
    policy_events,
    quality_flag_progress,
    quality_flags,
)

_IN_CHUNK = 2_000  # values per IN list (a chunk of events at most)


_e, _p = policy_events.c, policies.c
_NEWEST = select(func.max(_e.id))


def _member(column: ColumnElement[str], name: str, postgresql: bool) -> ColumnElement[bool]:
    # One parameter, not 2,000 expanded ones (whose rendering cost more than the probes):
    # an array on PostgreSQL (``= ANY``), a JSON array read by ``json_each`` on SQLite.
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(String)))
    return column.in_(
        select(literal_column("value"))
        .select_from(func.json_each(bindparam(name)))
        .scalar_subquery()
    )


def _context(postgresql: bool) -> Executable:
    """The three reads of ``context`` as one statement (one round trip: on the
    single-event path the round trips were the cost), rows told apart by ``kind``:
    - ``v``: a VIN's events (``ix_events_vin``; a VIN never seen costs one index probe);
    - ``p``: policy heads (not cancelled) whose head event carries one of the plates
      (``ix_events_plate``, then the head's primary key);
    - ``n``: the newest event id."""
    before: BindParameter[int] = bindparam("before", type_=Integer)
    none_text = cast(null(), String)
    none_instant = cast(null(), UTCDateTime)
    prior = select(
        literal("v").label("kind"),
        _e.vin,
        _e.plate,
        _e.occurred_at.label("at"),
        _e.id,
        none_text.label("event_type"),
        none_instant.label("start"),
        none_instant.label("end"),
        none_instant.label("effective_at"),
    ).where(and_(_member(_e.vin, "vins", postgresql), _e.id < before))
    holders = (
        select(
            literal("p"),
            _e.vin,
            _e.plate,
            none_instant,
            _e.id,
            _e.event_type,
            _e.coverage_start,
            _e.coverage_end,
            _e.effective_at,
        )
        .select_from(policy_events)
        .join(
            policies,
            and_(
                _p.insurer_code == _e.insurer_code,
                _p.policy_no == _e.policy_no,
                _p.version == _e.version,
            ),
        )
        .where(
            and_(
                _member(_e.plate, "plates", postgresql),
                _e.id < before,
                _e.event_type != "cancel",
            )
        )
    )
    newest = select(
        literal("n"),
        none_text,
        none_text,
        none_instant,
        _NEWEST.scalar_subquery(),
        none_text,
        none_instant,
        none_instant,
        none_instant,
    )
    return union_all(prior, holders, newest)


_CONTEXT = {False: _context(False), True: _context(True)}

_PASS = "ledger"  # the progress row's name
_q = quality_flag_progress.c
_WATERMARK = select(_q.next_leaf).where(_q.name == _PASS)
_l = ledger_leaves.c
_PENDING = (
    select(
        _e.id,
        _e.insurer_code,
        _e.policy_no,
        _e.version,
        _e.event_type,
        _e.plate,
        _e.vin,
        _e.vehicle_type,
        _e.coverage_start,
        _e.coverage_end,
        _e.effective_at,
        _e.premium,
    )
    .select_from(ledger_leaves.join(policy_events, _e.id == _l.event_id))
    .where(_l.leaf_index >= bindparam("start"), _l.leaf_index < bindparam("stop"))
    .order_by(_l.leaf_index)
)


def _parts(values: Sequence[str]) -> list[list[str]]:
    return [list(values[i : i + _IN_CHUNK]) for i in range(0, len(values), _IN_CHUNK)]


class SqlQualityFlags:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def context(self, vins: Sequence[str], plates: Sequence[str], before_id: int) -> FlagContext:
        """What the rules need to know about a chunk's vehicles: one statement per 2,000
        VINs and plates (a chunk), on a connection in autocommit (no BEGIN, no ROLLBACK)."""
        found: dict[str, tuple[datetime, int, str]] = {}
        holders: list[PlateHolder] = []
        newest = 0
        vin_parts, plate_parts = _parts(vins), _parts(plates)
        with self._engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            postgresql = conn.dialect.name == "postgresql"
            statement = _CONTEXT[postgresql]
            pack = (lambda part: part) if postgresql else (lambda part: json.dumps(part))
            for index in range(max(len(vin_parts), len(plate_parts), 1)):
                parameters = {
                    "vins": pack(vin_parts[index] if index < len(vin_parts) else []),
                    "plates": pack(plate_parts[index] if index < len(plate_parts) else []),
                    "before": before_id,
                }
                for kind, vin, plate, at, event_id, event_type, start, end, cut in conn.execute(
                    statement, parameters
                ):
                    if kind == "n":
                        newest = int(event_id or 0)
                    elif kind == "v":
                        held = found.get(vin)
                        if held is None or (at, event_id) > held[:2]:
                            found[vin] = (at, event_id, plate)
                    else:
                        if event_type == "surrender" and cut is not None:
                            end = min(end, cut)
                        if end > start:
                            holders.append(PlateHolder(plate, vin, start, end))
        return FlagContext({vin: held[2] for vin, held in found.items()}, holders, newest)

    def premium_sample(self, size: int) -> tuple[int, list[tuple[str, str, Decimal]]]:
        e = policy_events.c
        with self._engine.connect() as conn:
            newest = int(conn.execute(select(func.max(e.id))).scalar() or 0)
            rows = conn.execute(
                select(e.insurer_code, e.vehicle_type, e.premium).where(e.id > newest - size)
            )
            sample = [(code, kind, Decimal(premium)) for code, kind, premium in rows]
        return newest, sample

    def watermark(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(_WATERMARK).scalar() or 0)

    def pending(self, from_leaf: int, limit: int) -> list[FlagSubject]:
        with self._engine.connect() as conn:
            rows = conn.execute(_PENDING, {"start": from_leaf, "stop": from_leaf + limit})
            return [
                FlagSubject(
                    row.id,
                    row.insurer_code,
                    row.policy_no,
                    row.version,
                    EventType(row.event_type),
                    row.plate,
                    row.vin,
                    VehicleType(row.vehicle_type),
                    row.coverage_start,
                    row.coverage_end,
                    row.effective_at,
                    Decimal(row.premium),
                )
                for row in rows
            ]

    def record(self, flags: Sequence[NewFlag], from_leaf: int, to_leaf: int) -> bool:
        try:
            with self._engine.begin() as conn:
                if not _move(conn, from_leaf, to_leaf):
                    return False
                if flags:
                    _add(conn, flags)
        except IntegrityError:  # two first passes inserted the row at once; the other won
            return False
        return True

    def page(self, insurer_code: str, before: int | None, limit: int) -> list[FlagRecord]:
        q = quality_flags.c
        query = select(q.id, q.policy_no, q.version, q.code, q.message, q.flagged_at).where(
            q.insurer_code == insurer_code
        )
        if before is not None:
            query = query.where(q.id < before)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(q.id.desc()).limit(limit))
            return [FlagRecord(*row) for row in rows]

    def insurer_exists(self, insurer_code: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(insurers.c.code).where(insurers.c.code == insurer_code)
            ).first()
        return found is not None


def _move(conn: Connection, from_leaf: int, to_leaf: int) -> bool:
    """The watermark from ``from_leaf`` to ``to_leaf``, if no other pass moved it first (on
    PostgreSQL a second pass waits on the row, then finds it moved)."""
    moved = conn.execute(
        update(quality_flag_progress)
        .where(_q.name == _PASS, _q.next_leaf == from_leaf)
        .values(next_leaf=to_leaf)
    ).rowcount
    if moved:
        return True
    if from_leaf != 0 or conn.execute(_WATERMARK).first() is not None:
        return False
    # No row: a database emptied by hand (tests truncate); the first pass creates it.
    conn.execute(insert(quality_flag_progress).values(name=_PASS, next_leaf=to_leaf))
    return True


def _add(conn: Connection, flags: Sequence[NewFlag]) -> None:
    conn.execute(
        insert(quality_flags),
        [
            {
                "insurer_code": f.insurer_code,
                "policy_no": f.policy_no,
                "version": f.version,
                "event_id": f.event_id,
                "code": f.code,
                "message": f.message,
                "flagged_at": f.flagged_at,
            }
            for f in flags
        ],
    )
