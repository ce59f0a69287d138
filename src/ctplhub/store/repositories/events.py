"""Policy events: every accepted event, the history (DESIGN §2.4)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert

from ctplhub.services.ports import EventKey, NewEventRow, StoredEventRef
from ctplhub.store.pg_bulk import CopyColumns, copy_in, driver_cursor, next_ids
from ctplhub.store.repositories.clauses import by_insurer, chunks, policy_lookup
from ctplhub.store.tables import policy_events

_COPY = CopyColumns.of(policy_events, ("id", *NewEventRow._fields))
_STORED = ("policy_no", "version", "id", "content_hash", "received_at")


class SqlEventRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def stored(self, keys: Sequence[EventKey]) -> dict[EventKey, StoredEventRef]:
        """What is already stored under these keys (for duplicates and conflicts)."""
        found: dict[EventKey, StoredEventRef] = {}
        wanted = set(keys)
        # Per insurer, by policy number (row-value IN lists can degrade to a sequential
        # scan on PostgreSQL).
        query = policy_lookup(self._conn, policy_events, _STORED, lock=False)
        for insurer_code, policy_nos in by_insurer((k[0], k[1]) for k in keys).items():
            for part in chunks(self._conn, policy_nos):
                rows = self._conn.execute(
                    query, {"insurer_code": insurer_code, "values": list(part)}
                )
                for pno, version, event_id, content_hash, received_at in rows:
                    if (insurer_code, pno, version) in wanted:
                        found[(insurer_code, pno, version)] = StoredEventRef(
                            event_id, content_hash, received_at
                        )
        return found

    def add_many(self, rows: Sequence[NewEventRow]) -> list[int]:
        """Insert the rows; their ids in the same order."""
        if not rows:
            return []
        if self._conn.dialect.name == "postgresql":
            with driver_cursor(self._conn) as cursor:
                ids = next_ids(cursor, "policy_events", len(rows))
                copy_in(
                    cursor,
                    "policy_events",
                    _COPY,
                    ((event_id, *row) for event_id, row in zip(ids, rows, strict=True)),
                )
            return ids
        result = self._conn.execute(
            insert(policy_events).returning(policy_events.c.id, sort_by_parameter_order=True),
            [row._asdict() for row in rows],
        )
        return [row[0] for row in result]
