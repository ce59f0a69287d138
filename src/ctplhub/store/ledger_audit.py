"""What the ledger's auditor and backfill read (``services.ledger_ports``): every leaf
joined with its event, every leaf's stored hashes, every signed tree head, the events no
leaf names, each as one ordered stream.

An audit reads a million leaves (and their two million stored hashes), so the streams bypass
SQLAlchemy's row processing (a dozen type conversions per row would cost more than the
audit's own hashing): server-side cursors on PostgreSQL, the driver's own cursors on
SQLite, each on a connection of its own, with only the two conversions SQLite needs
(its instants are text, its numeric a float).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

from ctplhub.ledger import HASH_SIZE
from ctplhub.services.ledger_ports import AuditedLeaf, EventToBackfill, StoredEventFields
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.store.repositories.ledger import head_of_row

_FETCH = 5_000
_EVENT_COLUMNS = (
    "insurer_code, policy_no, event_type, version, occurred_at, plate, vin, vehicle_type, "
    "use_nature, owner_name_enc, owner_id_type, owner_id_enc, owner_phone_enc, "
    "coverage_start, coverage_end, premium, region_code, prior_policy_no, effective_at"
)
_E = ", ".join(f"e.{name.strip()}" for name in _EVENT_COLUMNS.split(","))
_LEAVES = (
    f"SELECT l.leaf_index, l.event_id, l.entry, l.salts_enc, e.id, {_E} "
    "FROM ledger_leaves l LEFT JOIN policy_events e ON e.id = l.event_id "
    "WHERE l.leaf_index >= {start} AND l.leaf_index < {end} ORDER BY l.leaf_index"
)
_HASHES = (
    "SELECT leaf_index, hashes FROM ledger_leaves WHERE leaf_index < {end} ORDER BY leaf_index"
)
_COUNT_HASHES = f"SELECT coalesce(sum(length(hashes)), 0) / {HASH_SIZE} FROM ledger_leaves"
_MISSING = (
    "SELECT e.id FROM policy_events e WHERE NOT EXISTS "
    "(SELECT 1 FROM ledger_leaves l WHERE l.event_id = e.id) ORDER BY e.id"
)
# The backfill walks the events by id, a window of ids at a time, and asks the leaves'
# unique index which of them are logged: O(window) per step on both engines. One
# statement with NOT EXISTS let PostgreSQL's planner pick a hash anti-join that read the
# whole of ledger_leaves for every batch (and JIT-compiled it), quadratic in the log.
_WINDOW = 10_000
_IDS_AFTER = "SELECT id FROM policy_events WHERE id > :after ORDER BY id LIMIT :limit"
_PG_LOGGED = "SELECT event_id FROM ledger_leaves WHERE event_id = ANY(:ids)"
_SQLITE_LOGGED = (
    "SELECT event_id FROM ledger_leaves WHERE event_id IN (SELECT value FROM json_each(:ids))"
)
_PG_EVENTS = f"SELECT e.id, {_E} FROM policy_events e WHERE e.id = ANY(:ids) ORDER BY e.id"
_SQLITE_EVENTS = (
    f"SELECT e.id, {_E} FROM policy_events e "
    "WHERE e.id IN (SELECT value FROM json_each(:ids)) ORDER BY e.id"
)
_INSTANTS = (4, 13, 14, 18)  # positions of the instants among the event's columns
_PREMIUM = 15


class SqlLedgerAuditSource:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    def counts(self) -> tuple[int, int, int]:
        with self._engine.connect() as conn:
            events, leaves = (
                int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("policy_events", "ledger_leaves")
            )
            hashes = int(conn.execute(text(_COUNT_HASHES)).scalar_one())
        return events, leaves, hashes

    def tree_heads(self) -> list[SignedTreeHead]:
        query = text(
            "SELECT tree_size, root_hash, timestamp_ms, kid, signature FROM ledger_tree_heads "
            "ORDER BY tree_size"
        )
        with self._engine.connect() as conn:
            return [head_of_row(tuple(row)) for row in conn.execute(query)]

    def latest_tree_head(self) -> SignedTreeHead | None:
        query = text(
            "SELECT tree_size, root_hash, timestamp_ms, kid, signature FROM ledger_tree_heads "
            "ORDER BY tree_size DESC LIMIT 1"
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else head_of_row(tuple(row))

    def leaf_index_bound(self) -> int:
        with self._engine.connect() as conn:
            found = conn.execute(text("SELECT max(leaf_index) FROM ledger_leaves")).scalar()
        return 0 if found is None else int(found) + 1

    def leaves(self, start: int, end: int) -> Iterator[AuditedLeaf]:
        sql = _LEAVES.format(start=int(start), end=int(end))  # integers only: no injection
        for row in self._stream(sql, "audit_leaves"):
            event = None if row[4] is None else self._event(row[5:])
            yield AuditedLeaf(row[0], row[1], bytes(row[2]), bytes(row[3]), event)

    def hashes(self, end: int) -> Iterator[tuple[int, bytes]]:
        for leaf_index, value in self._stream(_HASHES.format(end=int(end)), "audit_hashes"):
            yield leaf_index, bytes(value)

    def events_without_leaf(self) -> Iterator[int]:
        for (event_id,) in self._stream(_MISSING, "audit_missing"):
            yield event_id

    def missing_count(self) -> int:
        with self._engine.connect() as conn:
            events = conn.execute(text("SELECT count(*) FROM policy_events")).scalar_one()
            leaves = conn.execute(text("SELECT count(*) FROM ledger_leaves")).scalar_one()
            if events == leaves:  # every leaf names one event and no event twice
                return 0
            return int(conn.execute(text(f"SELECT count(*) FROM ({_MISSING}) m")).scalar_one())

    def events_without_leaf_after(self, after_id: int, limit: int) -> list[EventToBackfill]:
        """Up to ``limit`` events after ``after_id`` that no leaf names, in id order;
        empty only when there are none left."""
        logged_sql = _SQLITE_LOGGED if self._sqlite else _PG_LOGGED
        events_sql = _SQLITE_EVENTS if self._sqlite else _PG_EVENTS
        window = max(limit, _WINDOW)
        with self._engine.connect() as conn:
            while True:
                ids = [
                    int(event_id)
                    for (event_id,) in conn.execute(
                        text(_IDS_AFTER), {"after": after_id, "limit": window}
                    )
                ]
                if not ids:
                    return []
                logged = {
                    int(event_id)
                    for (event_id,) in conn.execute(text(logged_sql), {"ids": self._list(ids)})
                }
                missing = [event_id for event_id in ids if event_id not in logged][:limit]
                if missing:
                    rows = conn.execute(text(events_sql), {"ids": self._list(missing)}).all()
                    driver_rows = [tuple(row) for row in rows]
                    return [EventToBackfill(row[0], self._event(row[1:])) for row in driver_rows]
                after_id = ids[-1]

    def _list(self, ids: list[int]) -> object:
        """A list parameter: an array on PostgreSQL, JSON text for ``json_each`` on SQLite."""
        return json.dumps(ids) if self._sqlite else ids

    def _event(self, row: tuple[Any, ...]) -> StoredEventFields:
        if not self._sqlite:
            values = list(row)
            values[9], values[11] = bytes(values[9]), bytes(values[11])
            if values[12] is not None:
                values[12] = bytes(values[12])
            return StoredEventFields(*values)
        values = list(row)
        for position in _INSTANTS:
            value = values[position]
            if isinstance(value, str):
                values[position] = datetime.fromisoformat(value).replace(tzinfo=UTC)
        if not isinstance(values[_PREMIUM], Decimal):
            values[_PREMIUM] = Decimal(f"{values[_PREMIUM]:.2f}")
        return StoredEventFields(*values)

    def _stream(self, sql: str, name: str) -> Iterator[tuple[Any, ...]]:
        raw = self._engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            if self._sqlite:
                with closing(driver.cursor()) as cursor:
                    cursor.arraysize = _FETCH
                    cursor.execute(sql)
                    while batch := cursor.fetchmany(_FETCH):
                        yield from batch
            else:
                with driver.cursor(name=name) as cursor:
                    cursor.itersize = _FETCH
                    cursor.execute(sql)
                    while batch := cursor.fetchmany(_FETCH):
                        yield from batch
                driver.rollback()
        finally:
            raw.close()
