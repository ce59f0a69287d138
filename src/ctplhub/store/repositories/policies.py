"""Policy heads: one row per policy holding the version that rules it (DESIGN §2.4), the
state coverage answers are computed from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Table,
    and_,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from ctplhub.domain.policy import EventType, PolicyHead
from ctplhub.services.ports import HeadRow, PolicyKey
from ctplhub.store.pg_bulk import CopyColumns, copy_in, driver_cursor
from ctplhub.store.repositories.clauses import by_insurer, chunks, policy_lookup
from ctplhub.store.tables import policies

_COLUMNS = (
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
_UPDATES = _COLUMNS[2:]
_FINAL = tuple(t.value for t in EventType if t.is_final)

# Heads arrive in a session temp table by COPY, then go to ``policies`` in one upsert.
_incoming = Table(
    "policy_heads_in",
    MetaData(),
    *(Column(name, policies.c[name].type) for name in _COLUMNS),
    prefixes=["TEMPORARY"],
)
_COPY = CopyColumns.of(policies, _COLUMNS)


def _outranks(new: Any, held: Any) -> Any:
    """SQL of ``domain.policy.state_rank(new) > state_rank(held)``: a surrender or cancel
    beats any other event and the lowest-versioned of them rules; otherwise the highest
    version rules. Decided in the upsert itself, so concurrent writers of one policy in
    several processes cannot undo each other."""
    new_final, held_final = _is_final(new.event_type), _is_final(held.event_type)
    return or_(
        and_(new_final, or_(~held_final, new.version < held.version)),
        and_(~new_final, ~held_final, new.version > held.version),
    )


def _is_final(event_type: Any) -> Any:
    # Literal values, not bound ones: the statement also runs as an executemany.
    return or_(*(event_type == literal_column(f"'{final}'") for final in _FINAL))


def _upsert(dialect: Any, source: Any = None) -> Any:
    stmt = dialect.insert(policies)
    if source is not None:
        stmt = stmt.from_select(list(_COLUMNS), source)
    return stmt.on_conflict_do_update(
        index_elements=[policies.c.insurer_code, policies.c.policy_no],
        set_={name: stmt.excluded[name] for name in _UPDATES},
        where=_outranks(stmt.excluded, policies.c),
    )


_SQLITE_UPSERT = _upsert(sqlite)
_PG_UPSERT = _upsert(postgresql, select(_incoming))


class SqlPolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def heads(self, keys: Sequence[PolicyKey]) -> dict[PolicyKey, PolicyHead]:
        """The ruling version of each policy already stored, locked against concurrent
        writers of the same policies until the transaction ends."""
        found: dict[PolicyKey, PolicyHead] = {}
        # Locked: writers of one policy are serialised, so "closed" cannot race a new
        # version (SQLite has one writer at a time anyway and ignores FOR UPDATE).
        query = policy_lookup(
            self._conn, policies, ("policy_no", "version", "event_type"), lock=True
        )
        for insurer_code, policy_nos in by_insurer(keys).items():
            for part in chunks(self._conn, policy_nos):
                params = {"insurer_code": insurer_code, "values": list(part)}
                for pno, version, event_type in self._conn.execute(query, params):
                    found[(insurer_code, pno)] = PolicyHead(version, EventType(event_type))
        return found

    def upsert_heads(self, rows: Sequence[HeadRow], event_ids: Sequence[int]) -> None:
        """Make each row its policy's head where it outranks the head held."""
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
        if self._conn.dialect.name != "postgresql":
            self._conn.execute(
                _SQLITE_UPSERT, [dict(zip(_COLUMNS, v, strict=True)) for v in values]
            )
            return
        with driver_cursor(self._conn) as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS policy_heads_in "
                "(LIKE policies INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            copy_in(cursor, "policy_heads_in", _COPY, values)
        self._conn.execute(_PG_UPSERT)
        with driver_cursor(self._conn) as cursor:
            cursor.execute("TRUNCATE policy_heads_in")
