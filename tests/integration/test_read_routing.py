"""Read routing over a primary and a replica (docs/deploy.md, "Read routing"), with two
real databases on each engine: the "replica" is a second database that receives the
primary's writes only when the test says so, so it is stale on purpose in between. A
read right after a write is never answered from it; once it has caught up, it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import text
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_container
from ctplhub.config import Settings
from ctplhub.store.read_fence import LocalReadFence, RedisReadFence, fence_key
from ctplhub.store.readers import vehicle_reader
from ctplhub.store.readers.routed import RoutedVehicleReader
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import metadata
from helpers import Clock, InsurerAccount, copy_sqlite_database, event, postgres_database

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
THIS_YEAR = {
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}
PLATE = "苏E12345"


@pytest.fixture(scope="session")
def postgres_replica_url(postgres_url: str, worker_id: str) -> Iterator[str]:
    with postgres_database(postgres_url, f"ctplhub_test_{worker_id}_replica") as url:
        yield url


@pytest.fixture
def replica_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, sqlite_template: Path
) -> str:
    """A second migrated, empty database on the same engine as ``database_url``."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "replica.db"
        copy_sqlite_database(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_replica_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str, replica_url: str, redis_url: str, home: Path) -> Settings:
    redis.Redis.from_url(redis_url).delete(fence_key(database_url))  # this primary's, anew
    return Settings(
        database_url=database_url,
        database_replica_url=replica_url,
        redis_url=redis_url,
        home=home,
        insurer_cache_s=0,
    )


@pytest.fixture
def replica(settings: Settings, clock: Clock) -> Iterator[Container]:
    """What replication would do, done by hand: the same writes on the replica."""
    assert settings.database_replica_url is not None
    built = build_container(
        Settings(database_url=settings.database_replica_url, home=settings.home, redis_url=None),
        clock=clock,
    )
    built.insurers.add("PICC", "中国人民财产保险", actor="test")
    yield built
    built.close()


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


def routed(database: str) -> float:
    found = REGISTRY.get_sample_value("ctplhub_reads_routed_total", {"database": database})
    return found or 0.0


def status_of(client: TestClient) -> Any:
    """The owner's short answer: whether the hub knows of cover for the plate."""
    answer = client.post("/v1/coverage/query", json={"plate": PLATE})
    assert answer.status_code == 200, answer.text
    return answer.json()["status_class"]


def test_the_writer_reads_its_write_then_the_replica_once_caught_up(
    picc: InsurerAccount, replica: Container, client: TestClient, settings: Settings
) -> None:
    # Both hold nothing yet: the replica may answer.
    before = routed("replica")
    assert status_of(client) == "NO_RECORD"
    assert routed("replica") > before

    reported = event(**THIS_YEAR)
    picc.api.report_event(reported)  # on the primary only; the replica is stale now
    primary_reads, replica_reads = routed("primary"), routed("replica")
    assert status_of(client) == "COVERED"  # the replica would say NO_RECORD
    assert routed("primary") > primary_reads
    assert routed("replica") == replica_reads  # not one read of it went to the replica

    # Another process reads the fence the write published in Redis: primary there too.
    assert settings.redis_url is not None and settings.database_replica_url is not None
    its_primary = vehicle_reader(settings.database_url)
    other = RoutedVehicleReader(
        its_primary,
        vehicle_reader(settings.database_replica_url),
        RedisReadFence(settings.redis_url, settings.database_url),
    )

    async def other_process_reads() -> tuple[bool, int]:
        await other.open()
        try:
            chosen = await other.choose()
            snapshot = await other.vehicles([PLATE], [])
        finally:
            await other.close()
        return chosen is its_primary, len(snapshot)

    assert asyncio.run(other_process_reads()) == (True, 1)

    replica.report_events.report(reported, insurer_code="PICC")  # replication catches up
    primary_reads, replica_reads = routed("primary"), routed("replica")
    assert status_of(client) == "COVERED"
    assert (routed("primary"), routed("replica")) > (primary_reads, replica_reads)
    assert routed("primary") == primary_reads


def test_reads_go_to_the_primary_when_the_fence_or_the_replica_cannot_answer(
    database_url: str, replica_url: str, picc: InsurerAccount, container: Container
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    primary = vehicle_reader(database_url)
    no_fence = RoutedVehicleReader(
        primary, vehicle_reader(replica_url), RedisReadFence("redis://127.0.0.1:1/0", "x")
    )
    gone = "postgresql://postgres@127.0.0.1:1/none" if "postgresql" in database_url else None
    fence = LocalReadFence()
    fence.passed(1)
    no_replica = RoutedVehicleReader(
        primary, vehicle_reader(gone or replica_url + "-missing", wait_s=0.5), fence
    )

    # A replica that says it holds the write, then fails the read itself.
    broken = make_engine(replica_url)
    with broken.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_tree_heads (tree_size, root_hash, timestamp_ms, kid, "
                "signature) VALUES (1, :root, 0, 'k', :signature)"
            ),
            {"root": bytes(32), "signature": bytes(64)},
        )
        conn.execute(text("ALTER TABLE policies RENAME TO policies_gone"))
    failing_read = RoutedVehicleReader(primary, vehicle_reader(replica_url), fence)
    failing_parts = RoutedVehicleReader(primary, vehicle_reader(replica_url), fence)

    async def reads() -> list[bool]:
        chosen = []
        try:
            for reader in (no_fence, no_replica, failing_read):
                chosen.append(await reader.choose() is primary)
                assert len(await reader.vehicles([PLATE], [])) == 1  # the primary answered
            parts = [part async for part in failing_parts.vehicle_parts([PLATE], [])]
            assert sum(len(part.snapshot) for part in parts) == 1
        finally:
            for reader in (no_fence, no_replica, failing_read, failing_parts):
                await reader.close()
        return chosen

    try:
        # The broken replica is chosen (it holds the fence), and its failure is not seen.
        assert asyncio.run(reads()) == [True, True, False]
    finally:
        with broken.begin() as conn:
            conn.execute(text("ALTER TABLE policies_gone RENAME TO policies"))
        broken.dispose()
