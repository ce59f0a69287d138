"""Request nonces in the database, shared by every API process (DESIGN §4, §5.1)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from ctplhub.services.ports import NonceVerdict
from ctplhub.store.tables import request_nonces


class SqlNonceStore:
    """A nonce is a primary key: a second insert of it fails, in any process. The table
    outlives any restart, so a request is never ``BEFORE_MEMORY`` here."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._inserts = 0

    def remember(
        self, key_id: str, nonce: str, now: datetime, ttl_s: int, *, signed_at: int
    ) -> NonceVerdict:
        with self._engine.connect() as conn:
            try:
                conn.execute(insert(request_nonces).values(key_id=key_id, nonce=nonce, seen_at=now))
                self._inserts += 1
                if self._inserts % 500 == 1:  # prune now and then, not on every request
                    conn.execute(
                        delete(request_nonces).where(
                            request_nonces.c.seen_at < now - timedelta(seconds=2 * ttl_s)
                        )
                    )
                conn.commit()
            except IntegrityError:
                conn.rollback()
                return NonceVerdict.SEEN
        return NonceVerdict.NEW
