"""Insurers' live-confirmation endpoints (DESIGN §10), with the key each call is signed
with (``services.live_confirmation.ConfirmEndpointStore``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, delete, insert, or_, select, update

from ctplhub.services.live_confirmation import EndpointRecord
from ctplhub.store.tables import insurer_confirm_endpoints, insurer_keys, insurers


class SqlConfirmEndpoints:
    """Each call is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, insurer_code: str, url: str | None, at: datetime) -> None:
        t = insurer_confirm_endpoints
        with self._engine.begin() as conn:
            if url is None:
                conn.execute(delete(t).where(t.c.insurer_code == insurer_code))
                return
            done = conn.execute(
                update(t).where(t.c.insurer_code == insurer_code).values(url=url, updated_at=at)
            )
            if done.rowcount == 0:
                conn.execute(insert(t).values(insurer_code=insurer_code, url=url, updated_at=at))

    def get(self, insurer_code: str) -> tuple[str, datetime] | None:
        t = insurer_confirm_endpoints.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.url, t.updated_at).where(t.insurer_code == insurer_code)
            ).first()
        return (row[0], row[1]) if row else None

    def certified_with_keys(self, now: datetime) -> list[EndpointRecord]:
        """Certified insurers' endpoints, each with its newest key still valid at ``now``
        (a rotation's old key keeps working for the overlap, but the new one signs)."""
        e, i, k = insurer_confirm_endpoints.c, insurers.c, insurer_keys.c
        query = (
            select(e.insurer_code, e.url, k.key_id, k.secret_enc)
            .join(insurers, i.code == e.insurer_code)
            .join(insurer_keys, k.insurer_code == e.insurer_code)
            .where(and_(i.status == "certified", or_(k.revoked_at.is_(None), k.revoked_at > now)))
            .order_by(e.insurer_code, k.created_at.desc(), k.key_id.desc())
        )
        found: dict[str, EndpointRecord] = {}
        with self._engine.connect() as conn:
            for code, url, key_id, sealed in conn.execute(query):
                if code not in found:
                    found[code] = EndpointRecord(code, url, key_id, bytes(sealed))
        return list(found.values())
