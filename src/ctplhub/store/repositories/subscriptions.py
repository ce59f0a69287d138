"""Reminder subscriptions (DESIGN §7): a vehicle's channel and sealed address."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ctplhub.services.reminder_ports import NewSubscription, SubscriptionRow
from ctplhub.store.tables import subscriptions

_s = subscriptions.c
_COLUMNS = (
    _s.id,
    _s.vin,
    _s.channel,
    _s.address_bidx,
    _s.language,
    _s.token_hash,
    _s.source,
    _s.created_at,
    _s.ended_at,
)


def _row(row: Any) -> SubscriptionRow:
    return SubscriptionRow(*row)


class SqlSubscriptionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def of_vehicle(self, vin: str) -> list[SubscriptionRow]:
        rows = self._conn.execute(select(*_COLUMNS).where(_s.vin == vin).order_by(_s.id))
        return [_row(r) for r in rows]

    def get(self, subscription_id: int) -> SubscriptionRow | None:
        row = self._conn.execute(select(*_COLUMNS).where(_s.id == subscription_id)).first()
        return _row(row) if row is not None else None

    def add(self, new: NewSubscription) -> int:
        result = self._conn.execute(
            insert(subscriptions).returning(_s.id),
            {
                "vin": new.vin,
                "channel": new.channel,
                "address_enc": new.address_enc,
                "address_bidx": new.address_bidx,
                "language": new.language,
                "token_salt": new.token_salt,
                "token_hash": new.token_hash,
                "source": new.source,
                "created_at": new.created_at,
                "ended_at": None,
            },
        )
        return int(result.scalar_one())

    def renew(
        self, subscription_id: int, language: str, token_salt: bytes, token_hash: str
    ) -> None:
        self._conn.execute(
            update(subscriptions)
            .where(_s.id == subscription_id)
            .values(ended_at=None, language=language, token_salt=token_salt, token_hash=token_hash)
        )

    def end(self, subscription_id: int, at: datetime) -> None:
        self._conn.execute(
            update(subscriptions)
            .where(_s.id == subscription_id, _s.ended_at.is_(None))
            .values(ended_at=at)
        )
