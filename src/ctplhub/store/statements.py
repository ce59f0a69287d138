"""The read statements of coverage answers, with the rows they return, for both engines.

One statement answers every coverage question (an owner's query, a police officer's bulk
verify, the web page): given plates and VINs, it returns the complete history of every
vehicle that ever carried one of the plates or has one of the VINs: the plate claim of
each of their events and each of their policies at the version that rules it. Which
vehicle a plate means at an instant is then decided in the domain (``domain.vehicle``),
so the statement has no instant in it and one read can serve many questions.

The statement is built once with SQLAlchemy Core and compiled to the SQL text of each
engine; the readers (``store.readers``) run that text on their own drivers. Lists are
one parameter each, whatever their length: a PostgreSQL array (``= ANY``) or, on SQLite,
a JSON array read with ``json_each``, so the driver never renders or parses hundreds of
placeholders and the prepared statement is the same for one plate and for thousands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.vehicle import PlateClaim, VehicleHistory
from ctplhub.services.ports import InsurerRecord
from ctplhub.store.tables import insurers, policies, policy_events

CLAIM, POLICY = 0, 1


class VehicleRow(NamedTuple):
    """A row of the vehicle statement: ``kind`` says which half of it is filled.

    ``CLAIM`` rows are events: ``plate`` carried from ``occurred_at`` (``event_id`` is the
    arrival order) by the owner whose blind index is ``owner_index``. ``POLICY`` rows are
    policies at their ruling version.
    """

    kind: int
    vin: str
    plate: str | None
    occurred_at: datetime | None
    event_id: int | None
    owner_index: bytes | None
    insurer_code: str | None
    policy_no: str | None
    version: int | None
    event_type: str | None
    coverage_start: datetime | None
    coverage_end: datetime | None
    effective_at: datetime | None


INSURER_COLUMNS = tuple(field.name for field in fields(InsurerRecord))
"""The columns of ``insurers`` an ``InsurerRecord`` is made of, in its order."""


def _pg_member(column: Any, name: str) -> Any:
    return column == any_(bindparam(name, type_=postgresql.ARRAY(String)))


def _pg_values(name: str) -> Any:
    return select(func.unnest(bindparam(name, type_=postgresql.ARRAY(String))))


def _json_values(name: str) -> Any:
    return select(literal_column("value")).select_from(func.json_each(bindparam(name)))


def _sqlite_member(column: Any, name: str) -> Any:
    return column.in_(_json_values(name))


def _vehicle_statement(
    member: Callable[[Any, str], Any], values: Callable[[str], Any], *, owners: bool = True
) -> Any:
    """The vehicle statement; without ``owners``, a claim's owner index is NULL (a bulk
    read: only an owner's own question compares it)."""
    e, p = policy_events.c, policies.c
    owner = e.owner_id_bidx if owners else cast(null(), LargeBinary)
    claimed = policy_events.alias("claimed")
    wanted = union(
        select(claimed.c.vin).where(member(claimed.c.plate, "plates")), values("vins")
    ).cte("wanted")
    vins = select(wanted.c.vin)
    claims = select(
        literal_column(str(CLAIM)).label("kind"),
        e.vin,
        e.plate,
        e.occurred_at,
        e.id.label("event_id"),
        owner.label("owner_index"),
        cast(null(), String).label("insurer_code"),
        cast(null(), String).label("policy_no"),
        cast(null(), Integer).label("version"),
        cast(null(), String).label("event_type"),
        cast(null(), DateTime(timezone=True)).label("coverage_start"),
        cast(null(), DateTime(timezone=True)).label("coverage_end"),
        cast(null(), DateTime(timezone=True)).label("effective_at"),
    ).where(e.vin.in_(vins))
    heads = select(
        literal_column(str(POLICY)),
        p.vin,
        cast(null(), String),
        cast(null(), DateTime(timezone=True)),
        cast(null(), Integer),
        cast(null(), LargeBinary),
        p.insurer_code,
        p.policy_no,
        p.version,
        p.event_type,
        p.coverage_start,
        p.coverage_end,
        p.effective_at,
    ).where(p.vin.in_(vins))
    return union_all(claims, heads)


# How many ledger leaves a database holds: the read fence's measure (store/read_fence.py).
# The same text for both drivers; the newest tree head, by its primary key.
LEDGER_SIZE = "SELECT tree_size FROM ledger_tree_heads ORDER BY tree_size DESC LIMIT 1"

PG_DIALECT: Dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
SQLITE_DIALECT: Dialect = sqlite.dialect(paramstyle="named")


@dataclass(frozen=True, slots=True)
class ReadStatements:
    """SQL text of the reads, for one engine's driver."""

    vehicles: str  # parameters: plates, vins
    insurers: str
    # The same without the owners' index (NULL): a bulk read's, whose callers never
    # compare it (police verify, cameras, the daily match); a tenth fewer bytes a row.
    vehicles_bulk: str
    # SQLite: the same rows as ONE row holding a JSON array of ``VehicleRow`` arrays, the
    # owner index in hex ('' for none): see ``sqlite_vehicle_rows``.
    vehicles_json: str | None = None
    vehicles_json_bulk: str | None = None


def _json_value(name: str) -> str:
    """A column of ``ReadStatements.vehicles_json``: the owner index in hex; an instant as
    ISO text marked UTC (SQLAlchemy keeps naive UTC text on SQLite), which
    ``datetime.fromisoformat`` reads straight into an aware instant; NULL stays NULL."""
    if name == "owner_index":
        return "hex(owner_index)"
    if name in ("occurred_at", *_INSTANTS):
        return f"{name} || '+00:00'"
    return name


def _text(statement: Any, dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))


@cache
def read_statements(engine: str) -> ReadStatements:
    """Compiled on first use: most processes (importers, CLI commands) never read."""
    everyone = select(*(insurers.c[name] for name in INSURER_COLUMNS)).order_by(insurers.c.code)
    if engine == "postgresql":
        member, values, dialect = _pg_member, _pg_values, PG_DIALECT
    else:
        member, values, dialect = _sqlite_member, _json_values, SQLITE_DIALECT
    vehicles = _vehicle_statement(member, values)
    bulk = _vehicle_statement(member, values, owners=False)
    # The rows are read by position: hold the statement to its named row type.
    for statement in (vehicles, bulk):
        columns = tuple(column.name for column in statement.selected_columns)
        if columns != VehicleRow._fields:
            raise AssertionError(f"the vehicle statement returns {columns}, not VehicleRow")
    text, bulk_text = _text(vehicles, dialect), _text(bulk, dialect)
    if engine == "postgresql":
        return ReadStatements(text, _text(everyone, dialect), bulk_text)
    return ReadStatements(
        text, _text(everyone, dialect), bulk_text, _as_json(text), _as_json(bulk_text)
    )


def _as_json(text: str) -> str:
    """``text``'s rows as one JSON array (``vehicles_json``); a bulk statement's NULL owner
    index comes out as ``''``, which ``sqlite_vehicle_rows`` reads as None."""
    values = ", ".join(_json_value(name) for name in VehicleRow._fields)
    return f"SELECT json_group_array(json_array({values})) FROM ({text})"


Instant = Callable[[Any], datetime]
_EVENT_TYPES = {t.value: t for t in EventType}


def vehicle_histories(
    rows: Iterable[Sequence[Any]], instant: Instant | None = None
) -> list[VehicleHistory]:
    """Group the rows of the vehicle statement by vehicle. ``instant`` turns the driver's
    timestamp values into aware UTC datetimes; ``None`` when the driver already gives
    them (psycopg with ``timestamptz``), which saves four calls a row on the path of a
    bulk verify.

    Drivers hand in plain tuples in ``VehicleRow`` order (a named tuple per row would cost
    a tenth of a question's read); the unpacking below names every field, and the kind of
    a row says which of them are filled.
    """
    if instant is not None:
        rows = (_with_instants(row, instant) for row in rows)
    claims: dict[str, list[PlateClaim]] = {}
    owners: dict[str, tuple[datetime, int, bytes]] = {}
    states: dict[str, list[PolicyState]] = {}
    # ``dict.get`` then a new list only for a new vehicle: ``setdefault(vin, [])`` would
    # make (and count for the collector) an empty list for every row.
    for row in rows:
        (kind, vin, plate, occurred_at, event_id, owner_index,
         insurer_code, policy_no, version, event_type,
         coverage_start, coverage_end, effective_at) = row  # fmt: skip
        if kind == CLAIM:
            claim = PlateClaim(vin, plate, occurred_at, event_id)
            held = claims.get(vin)
            if held is None:
                claims[vin] = [claim]
            else:
                held.append(claim)
            if owner_index is not None:
                owner = owners.get(vin)
                # the newest claim's owner, in PlateClaim.order: (occurred_at, event_id)
                if (
                    owner is None
                    or occurred_at > owner[0]
                    or (occurred_at == owner[0] and event_id > owner[1])
                ):
                    owners[vin] = (occurred_at, event_id, bytes(owner_index))
        else:
            state = PolicyState(
                insurer_code,
                policy_no,
                version,
                _EVENT_TYPES[event_type],
                coverage_start,
                coverage_end,
                effective_at,
            )
            known = states.get(vin)
            if known is None:
                states[vin] = [state]
            else:
                known.append(state)
    return [
        VehicleHistory(
            vin,
            tuple(vehicle_claims),
            tuple(states.get(vin, ())),
            owner[2] if (owner := owners.get(vin)) is not None else None,
        )
        for vin, vehicle_claims in claims.items()
    ]


_OCCURRED_AT = VehicleRow._fields.index("occurred_at")
_INSTANTS = ("coverage_start", "coverage_end", "effective_at")
_START, _END, _EFFECTIVE = (VehicleRow._fields.index(name) for name in _INSTANTS)
if VehicleRow._fields[-3:] != _INSTANTS:
    raise AssertionError("_with_instants needs the policy's three instants as the last columns")


def _with_instants(row: Sequence[Any], instant: Instant) -> tuple[Any, ...]:
    """A row of the vehicle statement with its instants made aware: ``occurred_at`` of a
    claim; ``coverage_start``, ``coverage_end`` and ``effective_at`` (the last three
    columns) of a policy."""
    if row[0] == CLAIM:
        return (*row[:_OCCURRED_AT], instant(row[_OCCURRED_AT]), *row[_OCCURRED_AT + 1 :])
    effective_at = row[_EFFECTIVE]
    return (
        *row[:_START],
        instant(row[_START]),
        instant(row[_END]),
        None if effective_at is None else instant(effective_at),
    )


_OWNER_INDEX = VehicleRow._fields.index("owner_index")


def sqlite_vehicle_rows(rows: list[list[Any]], instant: Instant) -> list[list[Any]]:
    """The rows of ``ReadStatements.vehicles_json`` (decoded from its JSON) as the vehicle
    statement's, changed in place: the owner index back to bytes, the instants (ISO text
    marked UTC) made aware by ``instant``."""
    for row in rows:
        owner_index = row[_OWNER_INDEX]
        row[_OWNER_INDEX] = bytes.fromhex(owner_index) if owner_index else None
        if row[0] == CLAIM:
            row[_OCCURRED_AT] = instant(row[_OCCURRED_AT])
        else:
            row[_START] = instant(row[_START])
            row[_END] = instant(row[_END])
            if row[_EFFECTIVE] is not None:
                row[_EFFECTIVE] = instant(row[_EFFECTIVE])
    return rows


def insurer_record(row: tuple[Any, ...], instant: Instant) -> InsurerRecord:
    """A row of ``INSURER_COLUMNS``, its instants made aware by ``instant``."""
    code, name, status, status_reason, status_changed_at, last_sync_at, claims_phone = row
    return InsurerRecord(
        code=code,
        name=name,
        status=status,
        status_reason=status_reason,
        status_changed_at=instant(status_changed_at),
        last_sync_at=None if last_sync_at is None else instant(last_sync_at),
        claims_phone=claims_phone,
    )
