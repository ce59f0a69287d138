"""Migration 0022: the access log's vehicle index keys on the vehicle key's first 8 bytes,
on both engines (on PostgreSQL on every monthly partition, and on months attached after);
the entries stay, the listing finds them before and after, and the downgrade brings the
old index back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, text

from ctplhub.services.ports import AccessRow
from ctplhub.store.repositories.access_log import SqlAccessLogStore
from ctplhub.store.schema import alembic_config, make_engine
from helpers import access_log_indexes

T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
KEYS = [bytes([n]) * 32 for n in range(1, 4)]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = make_engine(database_url)
    yield built
    built.dispose()


def listed(engine: Engine) -> list[list[datetime]]:
    store = SqlAccessLogStore(engine)
    return [[e.at for e in store.newest(key, T0 - timedelta(days=9), 10)] for key in KEYS]


def test_the_index_changes_and_the_entries_stay(engine: Engine) -> None:
    store = SqlAccessLogStore(engine)
    store.prepare(T0)
    rows = [
        AccessRow(T0 - timedelta(hours=n), "officer-1", "police", "bulk_verify", key, None)
        for n in range(3)
        for key in KEYS
    ]
    store.append(rows)
    expected = [[T0 - timedelta(hours=n) for n in range(3)]] * len(KEYS)
    config = alembic_config()

    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0021")
    engine.dispose()
    assert access_log_indexes(engine) == {"ix_access_log_vehicle_at": ["vehicle_key", "at"]}
    assert listed(engine) == expected
    if engine.dialect.name == "postgresql":
        assert month_indexes(engine) == ["(vehicle_key, at)"]

    for _ in range(2):  # run again after a stop between its two files: nothing changes
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.stamp(config, "0021")
            command.upgrade(config, "0022")
        engine.dispose()
    prefix = ["substr(vehicle_key, 1, 8)"]
    assert access_log_indexes(engine) == {"ix_access_log_vehicle_prefix": prefix}
    assert listed(engine) == expected
    if engine.dialect.name == "postgresql":  # every month has it, a month made later too
        store.prepare(T0 + timedelta(days=70))
        assert month_indexes(engine) == ["(substr(vehicle_key, 1, 8))"]


def month_indexes(engine: Engine) -> list[str]:
    """The key of each non-unique index on the access log's monthly partitions, each once."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT DISTINCT regexp_replace(indexdef, '^.* USING btree ', '') FROM pg_indexes "
                "WHERE tablename LIKE 'access_log\\_%' AND indexdef NOT LIKE 'CREATE UNIQUE%'"
            )
        ).scalars()
        return sorted(found)
