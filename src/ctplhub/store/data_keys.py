"""Envelope data keys and the rows a key rotation moves (DESIGN §5.3).

Each method is its own short transaction: a rotation commits batch by batch so that an
interruption loses at most one batch of work and the server's writers are never held up
for long. Rows "not under the active keys" are found by their first bytes in SQL, the
same expression on both engines (``substr`` and ``length`` work on SQLite blobs and on
PostgreSQL ``bytea``), walked in id order so each batch starts where the last ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import LargeBinary

from ctplhub.services.key_ports import (
    ACTIVE,
    RETIRED,
    RETIRING,
    Markers,
    SealedAddress,
    SealedDisputeText,
    SealedEvent,
    SealedSalts,
    SealedSecret,
    WrappedDataKey,
)
from ctplhub.services.ports import RetryableConflict
from ctplhub.store.sealed_job_blobs import SealedJobBlobs
from ctplhub.store.tables import (
    data_keys,
    dispute_history,
    disputes,
    insurer_keys,
    ledger_leaves,
    policy_events,
    subscriptions,
)

_BLIND_LEN = 33  # key byte + HMAC-SHA256


class SqlDataKeys:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def all(self) -> list[WrappedDataKey]:
        c = data_keys.c
        query = select(
            c.kid, c.purpose, c.seq, c.wrapped, c.master_kid, c.state, c.created_at
        ).order_by(c.purpose, c.seq)
        with self._engine.connect() as conn:
            return [
                WrappedDataKey(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6])
                for r in conn.execute(query)
            ]

    def begin_rotation(self, new_keys: Sequence[WrappedDataKey]) -> None:
        try:
            self._begin_rotation(new_keys)
        except IntegrityError:
            raise RetryableConflict("another process made a data key with this number") from None

    def _begin_rotation(self, new_keys: Sequence[WrappedDataKey]) -> None:
        c = data_keys.c
        with self._engine.begin() as conn:
            for key in new_keys:
                conn.execute(
                    update(data_keys)
                    .where(c.purpose == key.purpose, c.state == ACTIVE)
                    .values(state=RETIRING)
                )
                conn.execute(
                    insert(data_keys).values(
                        kid=key.kid,
                        purpose=key.purpose,
                        seq=key.seq,
                        wrapped=key.wrapped,
                        master_kid=key.master_kid,
                        state=ACTIVE,
                        created_at=key.created_at,
                    )
                )

    def retire(self, at: datetime) -> list[str]:
        c = data_keys.c
        with self._engine.begin() as conn:
            kids = [r[0] for r in conn.execute(select(c.kid).where(c.state == RETIRING))]
            conn.execute(
                update(data_keys).where(c.state == RETIRING).values(state=RETIRED, retired_at=at)
            )
        return sorted(kids)

    def rewrap(self, keys: Sequence[WrappedDataKey]) -> None:
        if not keys:
            return
        c = data_keys.c
        statement = (
            update(data_keys)
            .where(c.kid == bindparam("k_kid"))
            .values(wrapped=bindparam("k_wrapped"), master_kid=bindparam("k_master"))
        )
        with self._engine.begin() as conn:
            conn.execute(
                statement,
                [{"k_kid": k.kid, "k_wrapped": k.wrapped, "k_master": k.master_kid} for k in keys],
            )


def _not_under(column: Any, header: bytes) -> ColumnElement[bool]:
    prefix = literal(header, LargeBinary)
    return func.substr(column, 1, len(header)) != prefix


def _stale(markers: Markers) -> ColumnElement[bool]:
    e = policy_events.c
    return or_(
        _not_under(e.owner_name_enc, markers.field_header),
        _not_under(e.owner_id_enc, markers.field_header),
        and_(e.owner_phone_enc.is_not(None), _not_under(e.owner_phone_enc, markers.field_header)),
        func.length(e.owner_id_bidx) != _BLIND_LEN,
        _not_under(e.owner_id_bidx, markers.blind_prefix),
    )


class SqlSealedRows(SealedJobBlobs):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def stale_events(self, after_id: int, limit: int, markers: Markers) -> list[SealedEvent]:
        e = policy_events.c
        query = (
            select(
                e.id,
                e.insurer_code,
                e.policy_no,
                e.version,
                e.owner_name_enc,
                e.owner_id_enc,
                e.owner_phone_enc,
                e.owner_id_bidx,
            )
            .where(e.id > after_id, _stale(markers))
            .order_by(e.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                SealedEvent(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    bytes(r[4]),
                    bytes(r[5]),
                    None if r[6] is None else bytes(r[6]),
                    bytes(r[7]),
                )
                for r in conn.execute(query)
            ]

    def count_stale_events(self, markers: Markers) -> int:
        query = select(func.count()).select_from(policy_events).where(_stale(markers))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def reseal_events(self, rows: Sequence[SealedEvent]) -> None:
        if not rows:
            return
        e = policy_events.c
        statement = (
            update(policy_events)
            .where(e.id == bindparam("r_id"))
            .values(
                owner_name_enc=bindparam("r_name"),
                owner_id_enc=bindparam("r_id_number"),
                owner_phone_enc=bindparam("r_phone"),
                owner_id_bidx=bindparam("r_bidx"),
            )
        )
        params = [
            {
                "r_id": r.id,
                "r_name": r.owner_name_enc,
                "r_id_number": r.owner_id_enc,
                "r_phone": r.owner_phone_enc,
                "r_bidx": r.owner_id_bidx,
            }
            for r in rows
        ]
        with self._engine.begin() as conn:
            conn.execute(statement, params)

    def stale_salts(self, after_leaf: int, limit: int, markers: Markers) -> list[SealedSalts]:
        c = ledger_leaves.c
        query = (
            select(c.leaf_index, c.event_id, c.salts_enc)
            .where(c.leaf_index > after_leaf, _not_under(c.salts_enc, markers.field_header))
            .order_by(c.leaf_index)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [SealedSalts(r[0], r[1], bytes(r[2])) for r in conn.execute(query)]

    def count_stale_salts(self, markers: Markers) -> int:
        c = ledger_leaves.c
        query = (
            select(func.count())
            .select_from(ledger_leaves)
            .where(_not_under(c.salts_enc, markers.field_header))
        )
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def reseal_salts(self, rows: Sequence[SealedSalts]) -> None:
        if not rows:
            return
        c = ledger_leaves.c
        statement = (
            update(ledger_leaves)
            .where(c.leaf_index == bindparam("l_index"))
            .values(salts_enc=bindparam("l_salts"))
        )
        with self._engine.begin() as conn:
            conn.execute(
                statement, [{"l_index": r.leaf_index, "l_salts": r.salts_enc} for r in rows]
            )

    def insurer_secrets(self) -> list[SealedSecret]:
        k = insurer_keys.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(k.key_id, k.secret_enc).order_by(k.key_id))
            return [SealedSecret(r[0], bytes(r[1])) for r in rows]

    def reseal_secrets(self, rows: Sequence[SealedSecret]) -> None:
        k = insurer_keys.c
        statement = (
            update(insurer_keys)
            .where(k.key_id == bindparam("s_key"))
            .values(secret_enc=bindparam("s_enc"))
        )
        with self._engine.begin() as conn:
            conn.execute(statement, [{"s_key": r.key_id, "s_enc": r.secret_enc} for r in rows])

    def stale_addresses(self, after_id: int, limit: int, markers: Markers) -> list[SealedAddress]:
        s = subscriptions.c
        query = (
            select(s.id, s.vin, s.channel, s.address_enc, s.address_bidx)
            .where(s.id > after_id, _stale_address(markers))
            .order_by(s.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                SealedAddress(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]))
                for r in conn.execute(query)
            ]

    def count_stale_addresses(self, markers: Markers) -> int:
        query = select(func.count()).select_from(subscriptions).where(_stale_address(markers))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def reseal_addresses(self, rows: Sequence[SealedAddress]) -> None:
        if not rows:
            return
        s = subscriptions.c
        statement = (
            update(subscriptions)
            .where(s.id == bindparam("a_id"))
            .values(address_enc=bindparam("a_enc"), address_bidx=bindparam("a_bidx"))
        )
        params = [{"a_id": r.id, "a_enc": r.address_enc, "a_bidx": r.address_bidx} for r in rows]
        with self._engine.begin() as conn:
            conn.execute(statement, params)

    def stale_dispute_texts(self, limit: int, markers: Markers) -> list[SealedDisputeText]:
        d, h = disputes.c, dispute_history.c
        header = markers.field_header
        messages = (
            select(d.id, d.token_hash, d.message_enc)
            .where(_not_under(d.message_enc, header))
            .order_by(d.id)
            .limit(limit)
        )
        notes = (
            select(h.id, h.dispute_id, h.note_enc)
            .where(h.note_enc.is_not(None), _not_under(h.note_enc, header))
            .order_by(h.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            found = [
                SealedDisputeText("message", r[0], r[1], bytes(r[2]))
                for r in conn.execute(messages)
            ]
            found += [
                SealedDisputeText("note", r[0], str(r[1]), bytes(r[2])) for r in conn.execute(notes)
            ]
        return found[:limit]

    def reseal_dispute_texts(self, rows: Sequence[SealedDisputeText]) -> None:
        d, h = disputes.c, dispute_history.c
        messages = [{"r_id": r.row_id, "r_blob": r.blob} for r in rows if r.kind == "message"]
        notes = [{"r_id": r.row_id, "r_blob": r.blob} for r in rows if r.kind == "note"]
        with self._engine.begin() as conn:
            if messages:
                conn.execute(
                    update(disputes)
                    .where(d.id == bindparam("r_id"))
                    .values(message_enc=bindparam("r_blob")),
                    messages,
                )
            if notes:
                conn.execute(
                    update(dispute_history)
                    .where(h.id == bindparam("r_id"))
                    .values(note_enc=bindparam("r_blob")),
                    notes,
                )


def _stale_address(markers: Markers) -> ColumnElement[bool]:
    s = subscriptions.c
    return or_(
        _not_under(s.address_enc, markers.field_header),
        func.length(s.address_bidx) != _BLIND_LEN,
        _not_under(s.address_bidx, markers.blind_prefix),
    )
