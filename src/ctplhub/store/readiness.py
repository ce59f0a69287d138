"""The checks behind ``/readyz`` (``services.readiness``): one short query per database,
and the replica's lag measured as the primary's position minus the replica's."""

from __future__ import annotations

import redis
from sqlalchemy import Engine, text

from ctplhub.services.readiness import PartState
from ctplhub.store.statements import LEDGER_SIZE

_PRIMARY_WAL = text("SELECT pg_current_wal_lsn()::text")
_REPLICA_WAL = text(
    "SELECT pg_last_wal_replay_lsn()::text, "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
)


def _lsn(value: str | None) -> int | None:
    """``16/B374D848`` as a byte position."""
    if value is None:
        return None
    high, low = value.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _ledger_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(LEDGER_SIZE)).scalar() or 0)


def database_state(engine: Engine) -> PartState:
    try:
        _ledger_size(engine)
    except Exception:
        return PartState(up=False)
    return PartState(up=True)


def replica_state(primary: Engine, replica: Engine) -> PartState:
    try:
        behind = _ledger_size(primary) - _ledger_size(replica)
        if replica.dialect.name != "postgresql":
            return PartState(up=True, lag_leaves=max(behind, 0))
        with primary.connect() as conn:
            written = _lsn(conn.execute(_PRIMARY_WAL).scalar())
        with replica.connect() as conn:
            replayed, since = conn.execute(_REPLICA_WAL).one()
    except Exception:
        return PartState(up=False)
    replayed_at = _lsn(replayed)
    lag_bytes = None if written is None or replayed_at is None else max(written - replayed_at, 0)
    # The time since the last replayed transaction is lag only while WAL waits: an idle
    # primary sends nothing to replay, and that is no lag.
    lag_s = float(since) if lag_bytes and since is not None else 0.0
    return PartState(up=True, lag_leaves=max(behind, 0), lag_bytes=lag_bytes, lag_s=lag_s)


def redis_state(url: str) -> PartState:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        return PartState(up=False)
    finally:
        client.close()
    return PartState(up=True)
