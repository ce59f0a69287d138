"""Repositories: SQL on one ``Connection``, rows mapped to domain and port types.

A repository never commits; the unit of work does (STYLE.md example 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Table,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    null,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType, PolicyHead
from ctplhub.domain.vehicle import PlateClaim
from ctplhub.services.ports import (
    Activity,
    EventKey,
    HeadRow,
    InsurerKeyRecord,
    InsurerRecord,
    NewEventRow,
    PolicyKey,
    StoredEventRef,
    UserRecord,
)
from ctplhub.store.tables import (
    UTCDateTime,
    insurer_activity,
    insurer_keys,
    insurer_status_changes,
    insurers,
    policies,
    policy_events,
    users,
)

# Bound parameters per statement stay well under SQLite's limit of 32,766.
_IN_CHUNK = 500
_ANY_CHUNK = 1_000  # small enough that PostgreSQL keeps to index lookups at 10M rows


def _upsert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _by_insurer(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, dict[str, None]] = {}
    for insurer_code, policy_no in keys:
        grouped.setdefault(insurer_code, {})[policy_no] = None
    return {code: list(nos) for code, nos in grouped.items()}


Member = Callable[[Any], Any]
_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(conn: Connection, name: str, build: Callable[[Member], Any]) -> Any:
    """A statement built once per dialect and reused: building SQLAlchemy constructs costs
    more than running the hot queries themselves.

    ``build`` receives ``member(column)``, the clause "column is one of :values": on
    PostgreSQL ``= ANY(:values)``, one array parameter, so the driver neither renders nor
    parses hundreds of placeholders per statement; elsewhere an expanding ``IN``.
    """
    key = (name, conn.dialect.name)
    statement = _STATEMENTS.get(key)
    if statement is None:
        member = pg_member if conn.dialect.name == "postgresql" else _in_member
        statement = _STATEMENTS[key] = build(member)
    return statement


def pg_member(column: Any) -> Any:
    """``column = ANY(:values)``: one array parameter, however many values."""
    return column == any_(bindparam("values", type_=postgresql.ARRAY(column.type)))


def _in_member(column: Any) -> Any:
    return column.in_(bindparam("values", expanding=True))


def _chunks(conn: Connection, items: Sequence[Any]) -> list[Sequence[Any]]:
    size = _ANY_CHUNK if conn.dialect.name == "postgresql" else _IN_CHUNK
    return [items[i : i + size] for i in range(0, len(items), size)]


_EVENT_COLUMNS = NewEventRow._fields


PG_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def _copy_columns(table: Table, names: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """Column names and the psycopg type names of a binary COPY into ``table``, taken
    from the table's own SQLAlchemy types so that they always match the schema."""
    types = [table.c[name].type.compile(dialect=PG_DIALECT).split("(")[0].lower() for name in names]
    return tuple(names), types


def _copy_in(
    cursor: Any, target: str, columns: tuple[tuple[str, ...], list[str]], rows: Iterable[Any]
) -> None:
    """Binary COPY of ``rows`` into ``target``: a third of text COPY's client CPU per row
    (no text formatting of instants and bytes) and less parsing for PostgreSQL."""
    names, types = columns
    with cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


_EVENT_COPY = _copy_columns(policy_events, ("id", *_EVENT_COLUMNS))


def _claimants(member: Member) -> Any:
    """VINs that claimed one of ``:values`` (plates) up to ``:at``, via ``ix_events_plate``."""
    claimed = policy_events.alias("claimed")
    return select(claimed.c.vin).where(
        member(claimed.c.plate), claimed.c.occurred_at <= bindparam("at")
    )


def _claims_of_claimants(member: Member) -> Any:
    t = policy_events.c
    return select(t.vin, t.plate, t.occurred_at, t.id).where(
        t.vin.in_(_claimants(member)), t.occurred_at <= bindparam("at")
    )


def vehicle_snapshot_statement(member: Member) -> Any:
    """Claims and policy heads of every vehicle that claimed the plate, in one result:
    ``kind`` 0 rows are claims (vin, plate, occurred_at, id), ``kind`` 1 rows are policies
    (vin, insurer_code, coverage_start, version, policy_no, event_type, coverage_end,
    effective_at)."""
    e, p = policy_events.c, policies.c
    claimants = _claimants(member)
    instant = UTCDateTime()
    claims = select(
        literal(0).label("kind"),
        e.vin,
        e.plate.label("text_1"),
        e.occurred_at.label("instant_1"),
        e.id.label("number"),
        type_coerce(null(), String).label("text_2"),
        type_coerce(null(), String).label("text_3"),
        type_coerce(null(), instant).label("instant_2"),
        type_coerce(null(), instant).label("instant_3"),
    ).where(e.vin.in_(claimants), e.occurred_at <= bindparam("at"))
    heads = select(
        literal(1),
        p.vin,
        p.insurer_code,
        p.coverage_start,
        p.version,
        p.policy_no,
        p.event_type,
        p.coverage_end,
        p.effective_at,
    ).where(p.vin.in_(claimants))
    return union_all(claims, heads)


def snapshot_rows(
    rows: Iterable[Any],
) -> tuple[list[PlateClaim], dict[str, list[PolicyState]]]:
    """Split the rows of ``vehicle_snapshot_statement`` into claims and policy heads."""
    claims: list[PlateClaim] = []
    states: dict[str, list[PolicyState]] = {}
    for kind, vin, text_1, instant_1, number, text_2, text_3, instant_2, instant_3 in rows:
        if kind == 0:
            claims.append(PlateClaim(vin, text_1, instant_1, number))
        else:
            states.setdefault(vin, []).append(
                PolicyState(
                    text_1, text_2, number, EventType(text_3), instant_1, instant_2, instant_3
                )
            )
    return claims, states


def _heads(member: Member) -> Any:
    t = policies.c
    query = select(t.policy_no, t.version, t.event_type).where(
        t.insurer_code == bindparam("insurer_code"), member(t.policy_no)
    )
    # Serialise writers of one policy so "closed" cannot race a new version (SQLite has
    # one writer at a time anyway and ignores FOR UPDATE).
    return query.with_for_update()


class SqlEventRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def stored(self, keys: Sequence[EventKey]) -> dict[EventKey, StoredEventRef]:
        found: dict[EventKey, StoredEventRef] = {}
        t = policy_events.c
        wanted = set(keys)
        # Per insurer, ``policy_no IN (...)``: a plain index range the planner always uses
        # (row-value IN lists can degrade to a sequential scan on PostgreSQL).
        query = _statement(
            self._conn,
            "stored",
            lambda member: select(
                t.policy_no, t.version, t.id, t.content_hash, t.received_at
            ).where(t.insurer_code == bindparam("insurer_code"), member(t.policy_no)),
        )
        for insurer_code, policy_nos in _by_insurer((k[0], k[1]) for k in keys).items():
            for part in _chunks(self._conn, policy_nos):
                rows = self._conn.execute(
                    query, {"insurer_code": insurer_code, "values": list(part)}
                )
                for pno, ver, event_id, content_hash, received_at in rows:
                    if (insurer_code, pno, ver) in wanted:
                        found[(insurer_code, pno, ver)] = StoredEventRef(
                            event_id, content_hash, received_at
                        )
        return found

    def add_many(self, rows: Sequence[NewEventRow]) -> list[int]:
        if not rows:
            return []
        if self._conn.dialect.name == "postgresql":
            return self._copy_many(rows)
        result = self._conn.execute(
            insert(policy_events).returning(policy_events.c.id, sort_by_parameter_order=True),
            [row._asdict() for row in rows],
        )
        return [row[0] for row in result]

    def _copy_many(self, rows: Sequence[NewEventRow]) -> list[int]:
        """PostgreSQL bulk path: ids drawn from the sequence, rows streamed with COPY.

        Same transaction as everything else in the unit of work; an order of magnitude
        faster than multi-row INSERT for batch ingest.
        """
        driver = self._conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('policy_events', 'id'))"
                " FROM generate_series(1, %s)",
                (len(rows),),
            )
            ids = [r[0] for r in cursor.fetchall()]
            _copy_in(
                cursor,
                "policy_events",
                _EVENT_COPY,
                ((event_id, *row) for event_id, row in zip(ids, rows, strict=True)),
            )
        return ids

    def claims_of_claimants(self, plates: Sequence[str], at: datetime) -> list[PlateClaim]:
        """Every claim up to ``at`` of every vehicle that ever claimed one of ``plates``.

        One round trip: the inner select finds the claimants through ``ix_events_plate``,
        the outer one their events through ``ix_events_vin``.
        """
        query = _statement(self._conn, "claims_of_claimants", _claims_of_claimants)
        claims: list[PlateClaim] = []
        for part in _chunks(self._conn, list(dict.fromkeys(plates))):
            rows = self._conn.execute(query, {"values": list(part), "at": at})
            claims.extend(PlateClaim(*row) for row in rows)
        return claims

    def vehicle_snapshot(
        self, plate: str, at: datetime
    ) -> tuple[list[PlateClaim], dict[str, list[PolicyState]]]:
        """Everything a plate query needs, in one round trip: the claims of every vehicle
        that claimed ``plate`` up to ``at``, and those vehicles' policies."""
        query = _statement(self._conn, "vehicle_snapshot", vehicle_snapshot_statement)
        return snapshot_rows(self._conn.execute(query, {"values": [plate], "at": at}))

    def owner_index_of(self, vin: str) -> bytes | None:
        """The blind index of the owner named by the vehicle's newest event."""
        t = policy_events.c
        row = self._conn.execute(
            select(t.owner_id_bidx)
            .where(t.vin == vin)
            .order_by(t.occurred_at.desc(), t.id.desc())
            .limit(1)
        ).first()
        return bytes(row[0]) if row else None


_HEAD_COLUMNS = (
    "insurer_code",
    "policy_no",
    "version",
    "event_type",
    "vin",
    "coverage_start",
    "coverage_end",
    "effective_at",
    "event_id",
)
_HEAD_UPDATES = _HEAD_COLUMNS[2:]
_HEAD_COPY = _copy_columns(policies, _HEAD_COLUMNS)


class SqlPolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def heads(self, keys: Sequence[PolicyKey]) -> dict[PolicyKey, PolicyHead]:
        found: dict[PolicyKey, PolicyHead] = {}
        query = _statement(self._conn, "heads", _heads)
        for insurer_code, policy_nos in _by_insurer(keys).items():
            for part in _chunks(self._conn, policy_nos):
                params = {"insurer_code": insurer_code, "values": list(part)}
                for pno, version, event_type in self._conn.execute(query, params):
                    found[(insurer_code, pno)] = PolicyHead(version, EventType(event_type))
        return found

    def upsert_heads(self, rows: Sequence[HeadRow], event_ids: Sequence[int]) -> None:
        if not rows:
            return
        values = [
            (
                r.insurer_code,
                r.policy_no,
                r.version,
                r.event_type,
                r.vin,
                r.coverage_start,
                r.coverage_end,
                r.effective_at,
                event_ids[r.event_index],
            )
            for r in rows
        ]
        if self._conn.dialect.name == "postgresql":
            self._copy_upsert(values)
            return
        stmt = sqlite.insert(policies)
        stmt = stmt.on_conflict_do_update(
            index_elements=[policies.c.insurer_code, policies.c.policy_no],
            set_={name: stmt.excluded[name] for name in _HEAD_UPDATES},
            # Highest version wins whatever the arrival order, even between processes.
            where=stmt.excluded.version > policies.c.version,
        )
        self._conn.execute(stmt, [dict(zip(_HEAD_COLUMNS, v, strict=True)) for v in values])

    def _copy_upsert(self, values: list[tuple[Any, ...]]) -> None:
        """PostgreSQL bulk path: COPY into a session temp table, then one upsert."""
        driver = self._conn.connection.driver_connection
        assert driver is not None
        columns = ", ".join(_HEAD_COLUMNS)
        updates = ", ".join(f"{name} = excluded.{name}" for name in _HEAD_UPDATES)
        with driver.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS policy_heads_in "
                "(LIKE policies INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            _copy_in(cursor, "policy_heads_in", _HEAD_COPY, values)
            cursor.execute(
                f"INSERT INTO policies ({columns}) SELECT {columns} FROM policy_heads_in "
                f"ON CONFLICT (insurer_code, policy_no) DO UPDATE SET {updates} "
                "WHERE excluded.version > policies.version"
            )
            cursor.execute("TRUNCATE policy_heads_in")

    def for_vins(self, vins: Sequence[str]) -> dict[str, list[PolicyState]]:
        t = policies.c
        found: dict[str, list[PolicyState]] = {}
        query = _statement(
            self._conn,
            "policies_for_vins",
            lambda member: select(
                t.vin,
                t.insurer_code,
                t.policy_no,
                t.version,
                t.event_type,
                t.coverage_start,
                t.coverage_end,
                t.effective_at,
            ).where(member(t.vin)),
        )
        for part in _chunks(self._conn, list(dict.fromkeys(vins))):
            rows = self._conn.execute(query, {"values": list(part)})
            for vin, ins, pno, version, event_type, start, end, effective_at in rows:
                found.setdefault(vin, []).append(
                    PolicyState(ins, pno, version, EventType(event_type), start, end, effective_at)
                )
        return found


_ALL_INSURERS = select(insurers).order_by(insurers.c.code)


def insurer_record(row: Any) -> InsurerRecord:
    return InsurerRecord(
        code=row.code,
        name=row.name,
        status=row.status,
        status_reason=row.status_reason,
        status_changed_at=row.status_changed_at,
        last_sync_at=row.last_sync_at,
    )


class SqlInsurerRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, code: str) -> InsurerRecord | None:
        row = self._conn.execute(select(insurers).where(insurers.c.code == code)).first()
        return insurer_record(row) if row else None

    def all(self) -> list[InsurerRecord]:
        return [insurer_record(r) for r in self._conn.execute(_ALL_INSURERS)]

    def add(self, code: str, name: str, actor: str, at: datetime) -> None:
        self._conn.execute(
            insert(insurers).values(
                code=code,
                name=name,
                status="certified",
                status_reason="registered",
                status_changed_at=at,
                status_changed_by=actor,
                created_at=at,
                last_sync_at=None,
            )
        )
        self._conn.execute(
            insert(insurer_status_changes).values(
                insurer_code=code, status="certified", reason="registered", actor=actor, at=at
            )
        )

    def set_status(self, code: str, status: str, reason: str, actor: str, at: datetime) -> None:
        self._conn.execute(
            update(insurers)
            .where(insurers.c.code == code)
            .values(
                status=status, status_reason=reason, status_changed_at=at, status_changed_by=actor
            )
        )
        self._conn.execute(
            insert(insurer_status_changes).values(
                insurer_code=code, status=status, reason=reason, actor=actor, at=at
            )
        )

    def add_key(self, key_id: str, code: str, secret_enc: bytes, at: datetime) -> None:
        self._conn.execute(
            insert(insurer_keys).values(
                key_id=key_id, insurer_code=code, secret_enc=secret_enc, created_at=at
            )
        )

    def key(self, key_id: str) -> InsurerKeyRecord | None:
        t = insurer_keys.c
        row = self._conn.execute(
            select(t.key_id, t.insurer_code, t.secret_enc).where(
                t.key_id == key_id, t.revoked_at.is_(None)
            )
        ).first()
        return InsurerKeyRecord(row[0], row[1], bytes(row[2])) if row else None

    def touch_sync(self, code: str, at: datetime) -> None:
        """Move the watermark forward, never back."""
        c = insurers.c
        self._conn.execute(
            update(insurers)
            .where(c.code == code, (c.last_sync_at.is_(None)) | (c.last_sync_at < at))
            .values(last_sync_at=at)
        )

    def record_activity(self, code: str, minute: datetime, accepted: int, rejected: int) -> None:
        stmt = _upsert(self._conn, insurer_activity).values(
            insurer_code=code, minute=minute, accepted=accepted, rejected=rejected
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[insurer_activity.c.insurer_code, insurer_activity.c.minute],
            set_={
                "accepted": insurer_activity.c.accepted + stmt.excluded.accepted,
                "rejected": insurer_activity.c.rejected + stmt.excluded.rejected,
            },
        )
        self._conn.execute(stmt)

    def activity_since(self, code: str, since: datetime) -> Activity:
        c = insurer_activity.c
        row = self._conn.execute(
            select(
                func.coalesce(func.sum(c.accepted), 0), func.coalesce(func.sum(c.rejected), 0)
            ).where(and_(c.insurer_code == code, c.minute >= since))
        ).one()
        return Activity(int(row[0]), int(row[1]))


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, name: str, role: str, token_hash: str, at: datetime) -> None:
        self._conn.execute(
            insert(users).values(name=name, role=role, token_hash=token_hash, created_at=at)
        )

    def by_token_hash(self, token_hash: str) -> UserRecord | None:
        c = users.c
        row = self._conn.execute(
            select(c.name, c.role).where(c.token_hash == token_hash, c.disabled_at.is_(None))
        ).first()
        return UserRecord(row[0], row[1]) if row else None
