"""The roadside cameras' alerts and seen read ids (``services.anpr.AlertStore``).

``raise_alerts`` is race-free across consumers: the read ids go in first with ``ON
CONFLICT DO NOTHING ... RETURNING``, so of two consumers given one read only the one
whose insert returned it goes on; then, on PostgreSQL, a transaction-scoped advisory lock
per (plate, region), taken in sorted order, makes the 24-hour check and the insert of the
alert one step for everyone (SQLite has one writer at a time already, and the
transaction's first statement is a write, so it holds the write lock from its start).
The alert's ``read_id`` is unique as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ctplhub.domain.anpr import ONE_ALERT_PER, Alert
from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.identifiers import Plate
from ctplhub.services.anpr import Rule
from ctplhub.store.tables import anpr_alerts, anpr_reads_seen

_a = anpr_alerts.c
_COLUMNS = (
    _a.alert_id,
    _a.read_id,
    _a.camera_id,
    _a.region_code,
    _a.plate,
    _a.seen_at,
    _a.status,
    _a.lapsed_since,
)
_LOCK_SPACE = 0x616E7072  # "anpr": the high half of every advisory lock key taken here


def _lock_key(plate: str, region: str) -> int:
    low = int.from_bytes(hashlib.sha256(f"{plate}/{region}".encode()).digest()[:4], "big")
    return ((_LOCK_SPACE << 32) | low) - (1 << 63)  # a signed bigint


def _alert(row: Any) -> Alert:
    m = row._mapping
    return Alert(
        m["alert_id"],
        m["read_id"],
        m["camera_id"],
        m["region_code"],
        Plate.parse(m["plate"]),
        m["seen_at"],
        CoverageStatus(m["status"]),
        m["lapsed_since"],
    )


class SqlAlertStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"

    def raise_alerts(self, candidates: Sequence[Alert], rule: Rule, now: datetime) -> list[Alert]:
        with self._engine.connect() as conn:
            fresh = self._remember(conn, candidates)
            todo = [c for c in candidates if c.read_id in fresh]
            raised: list[Alert] = []
            if todo:
                pairs = sorted({(c.plate.value, c.region_code) for c in todo})
                if self._postgresql:  # in one statement, in the sorted array's order
                    conn.execute(
                        text(
                            "SELECT pg_advisory_xact_lock(key) "
                            "FROM unnest(CAST(:keys AS bigint[])) AS key"
                        ),
                        {"keys": [_lock_key(plate, region) for plate, region in pairs]},
                    )
                kept = self._kept(conn, pairs, todo)
                raised = rule(kept, todo)
                if raised:
                    conn.execute(
                        anpr_alerts.insert(),
                        [
                            {
                                "alert_id": a.alert_id,
                                "read_id": a.read_id,
                                "camera_id": a.camera_id,
                                "region_code": a.region_code,
                                "plate": a.plate.value,
                                "seen_at": a.seen_at,
                                "status": a.status.value,
                                "lapsed_since": a.lapsed_since,
                                "created_at": now,
                            }
                            for a in raised
                        ],
                    )
            conn.commit()
        return raised

    def _remember(self, conn: Connection, candidates: Sequence[Alert]) -> set[str]:
        """Insert the read ids, sorted (two consumers never wait on each other in a
        circle), in one statement (a multi-row ``VALUES``, whose ``RETURNING`` gives
        every id inserted; the batch loop waits for each round trip); the ids that were
        not there before."""
        dialect_insert = postgresql.insert if self._postgresql else sqlite.insert
        first: dict[str, datetime] = {}
        for c in candidates:
            first.setdefault(c.read_id, c.seen_at)
        stmt = (
            dialect_insert(anpr_reads_seen)
            .values([{"read_id": rid, "seen_at": first[rid]} for rid in sorted(first)])
            .on_conflict_do_nothing()
            .returning(anpr_reads_seen.c.read_id)
        )
        return set(conn.execute(stmt).scalars())

    def _kept(
        self, conn: Connection, pairs: list[tuple[str, str]], todo: Sequence[Alert]
    ) -> list[tuple[str, str, datetime]]:
        low = min(c.seen_at for c in todo) - ONE_ALERT_PER
        high = max(c.seen_at for c in todo) + ONE_ALERT_PER
        found = conn.execute(
            select(_a.plate, _a.region_code, _a.seen_at).where(
                or_(*(and_(_a.plate == p, _a.region_code == r) for p, r in pairs)),
                _a.seen_at > low,
                _a.seen_at < high,
            )
        )
        return [(row.plate, row.region_code, row.seen_at) for row in found]

    def unpublished(self, created_before: datetime, limit: int) -> list[Alert]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(*_COLUMNS)
                .where(_a.published_at.is_(None), _a.created_at < created_before)
                .order_by(_a.created_at)
                .limit(limit)
            )
            return [_alert(row) for row in rows]

    def mark_published(self, alert_ids: Sequence[str], at: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(anpr_alerts)
                .where(_a.alert_id.in_(list(alert_ids)), _a.published_at.is_(None))
                .values(published_at=at)
            )

    def purge(self, seen_before: datetime) -> int:
        with self._engine.begin() as conn:
            gone = conn.execute(delete(anpr_alerts).where(_a.seen_at < seen_before)).rowcount
            conn.execute(delete(anpr_reads_seen).where(anpr_reads_seen.c.seen_at < seen_before))
        return int(gone or 0)

    def listed(self, region_prefix: str, since: datetime, limit: int) -> list[Alert]:
        query = select(*_COLUMNS).where(_a.seen_at >= since)
        if region_prefix:
            query = query.where(_a.region_code.startswith(region_prefix, autoescape=True))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(_a.seen_at, _a.read_id).limit(limit))
            return [_alert(row) for row in rows]
