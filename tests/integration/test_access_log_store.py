"""The access log's writer and table on SQLite and PostgreSQL (DESIGN §5.3): batches off
the request path, flushes on shutdown, survives a refused write, the database itself
refuses UPDATE and DELETE, and on SQLite the log is written into a file of its own."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError

from ctplhub.bootstrap import Container
from ctplhub.security.access_log import AccessLogWriter, VehicleIndex
from ctplhub.services.check_coverage import CoverageQuery
from ctplhub.services.ports import AccessRow, Reader
from ctplhub.store.repositories.access_log import SqlAccessLogStore, access_log_table
from ctplhub.store.schema import access_log_file, attach_access_log, make_engine
from helpers import VIN, VIN_B, access_log_indexes, run_reads
from helpers import event as policy_event

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
POLICE = Reader("officer-001", "police", "bulk_verify", "req-1")
INDEX = VehicleIndex(b"k" * 32)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = make_engine(database_url)
    yield built
    built.dispose()


class WriteCounter:
    """How many writes reached access_log: on SQLite its INSERT statements, on PostgreSQL
    (one binary COPY per batch, below SQLAlchemy) the transactions that wrote its rows."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._inserts = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO audit.access_log"):
            self._inserts += 1

    @property
    def writes(self) -> int:
        if self._engine.dialect.name == "sqlite":
            return self._inserts
        with self._engine.connect() as conn:
            return int(
                conn.execute(text("SELECT count(DISTINCT xmin::text) FROM access_log")).scalar_one()
            )


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(access_log_table(engine))).scalar_one()
        )


def logged_ats(engine: Engine) -> list[datetime]:
    table = access_log_table(engine)
    with engine.connect() as conn:
        return list(conn.execute(select(table.c.at).order_by(table.c.id)).scalars())


def test_many_records_go_out_in_few_multi_row_inserts(engine: Engine) -> None:
    counter = WriteCounter(engine)
    writer = AccessLogWriter(SqlAccessLogStore(engine), INDEX, flush_at=10_000)
    vins = [VIN if n % 2 else VIN_B for n in range(1_200)]
    writer.record_many(POLICE, vins, T0)
    assert count(engine) == 0  # recording only queues
    assert asyncio.run(writer.flush())
    assert count(engine) == 1_200
    # SQLite: 500 + 500 + 200 rows a statement; PostgreSQL: one COPY.
    assert counter.writes == (3 if engine.dialect.name == "sqlite" else 1)
    writer.close()


def test_the_flusher_writes_on_its_interval_and_at_shutdown(engine: Engine) -> None:
    counter = WriteCounter(engine)

    async def scenario() -> tuple[int, int]:
        writer = AccessLogWriter(SqlAccessLogStore(engine), INDEX, flush_interval_s=0.05)
        await writer.start()
        for n in range(50):
            writer.record(POLICE, VIN, T0 + timedelta(seconds=n))
        await asyncio.sleep(0.5)
        on_interval = count(engine)
        slow = AccessLogWriter(SqlAccessLogStore(engine), INDEX, flush_interval_s=3600)
        await slow.start()
        slow.record(POLICE, VIN_B, T0)
        await asyncio.sleep(0.1)
        assert count(engine) == on_interval  # a long interval: nothing written yet
        await slow.stop()  # shutdown writes what waits
        await writer.stop()
        writer.close()
        slow.close()
        return on_interval, count(engine)

    on_interval, at_end = asyncio.run(scenario())
    assert (on_interval, at_end) == (50, 51)
    assert counter.writes == 2  # the 50 in one write, the last one in another


def test_enough_waiting_entries_wake_the_flusher_early(engine: Engine) -> None:
    async def scenario() -> int:
        writer = AccessLogWriter(
            SqlAccessLogStore(engine), INDEX, flush_interval_s=3600, flush_at=100
        )
        await writer.start()
        for _ in range(150):
            writer.record(POLICE, VIN, T0)
        await asyncio.sleep(0.5)
        written = count(engine)
        await writer.stop()
        writer.close()
        return written

    assert asyncio.run(scenario()) == 150


def test_one_answers_entries_wait_for_flush_soon_or_a_quarter_of_the_bound(
    engine: Engine,
) -> None:
    """``record_many`` (the vehicles of one answer) queues without waking the flusher, so
    the answer is finished first; ``flush_soon`` (once it is sent) wakes it, and so does a
    queue past a quarter of its bound."""

    async def scenario() -> list[int]:
        writer = AccessLogWriter(
            SqlAccessLogStore(engine), INDEX, flush_interval_s=3600, flush_at=100,
            max_pending=1_000,
        )  # fmt: skip
        await writer.start()
        seen = []
        writer.record_many(POLICE, [VIN] * 150, T0)
        await asyncio.sleep(0.3)
        seen.append(count(engine))  # past flush_at, but not woken
        writer.flush_soon()
        await asyncio.sleep(0.3)
        seen.append(count(engine))
        writer.flush_soon()  # nothing waits: nothing to write
        writer.record_many(POLICE, [VIN_B] * 250, T0)  # a quarter of max_pending
        await asyncio.sleep(0.3)
        seen.append(count(engine))
        await writer.stop()
        writer.close()
        return seen

    assert asyncio.run(scenario()) == [0, 150, 400]


def _blocking_engine(database_url: str) -> Engine:
    """An engine that gives up on a locked table within 0.1 s instead of waiting."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 0.1})
        path = database_url.split("///", 1)[1]
        event.listen(engine, "connect", lambda conn, _: attach_access_log(conn, path))
        return engine
    return make_engine(database_url, connect_args={"options": "-c lock_timeout=100"})


class TableLock:
    """Another session holding the table, so that writes to it fail for a while (on
    SQLite, the access log's own file)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    def __enter__(self) -> TableLock:
        if self._url.startswith("sqlite"):
            path = access_log_file(self._url.split("///", 1)[1])
            self._sqlite = sqlite3.connect(path, isolation_level=None)
            self._sqlite.execute("BEGIN EXCLUSIVE")
        else:
            self._engine = make_engine(self._url)
            self._pg = self._engine.connect()
            self._pg.execute(text("LOCK TABLE access_log IN ACCESS EXCLUSIVE MODE"))
        return self

    def __exit__(self, *_: object) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
        else:
            self._pg.rollback()
            self._pg.close()
            self._engine.dispose()


def test_a_refused_batch_is_kept_in_order_and_retried(database_url: str, engine: Engine) -> None:
    blocking = _blocking_engine(database_url)

    async def scenario() -> tuple[int, int]:
        writer = AccessLogWriter(
            SqlAccessLogStore(blocking), INDEX, flush_interval_s=0.05, retry_max_s=0.2
        )
        await writer.start()
        with TableLock(database_url):
            for n in range(5):
                writer.record(POLICE, VIN, T0 + timedelta(seconds=n))
            await asyncio.sleep(0.5)  # several attempts fail meanwhile
            waiting = len(writer._pending)
        await asyncio.sleep(1.0)
        await writer.stop()
        writer.close()
        return waiting, count(engine)

    try:
        waiting, written = asyncio.run(scenario())
    finally:
        blocking.dispose()
    assert (waiting, written) == (5, 5)  # kept while refused, then written once each
    assert logged_ats(engine) == [T0 + timedelta(seconds=n) for n in range(5)]


def test_the_queue_is_bounded_and_drops_the_oldest(engine: Engine) -> None:
    writer = AccessLogWriter(SqlAccessLogStore(engine), INDEX, flush_at=5, max_pending=10)
    for n in range(15):
        writer.record(POLICE, VIN, T0 + timedelta(seconds=n))
    assert writer.dropped == 5
    assert writer.flush_now()
    assert logged_ats(engine) == [T0 + timedelta(seconds=n) for n in range(5, 15)]
    writer.close()


def test_update_and_delete_are_refused_by_the_database(engine: Engine) -> None:
    SqlAccessLogStore(engine).append(
        [AccessRow(T0, "officer-001", "police", "bulk_verify", INDEX(VIN), None)]
    )
    table = access_log_table(engine)
    name = table.fullname  # on SQLite, audit.access_log: its triggers moved with it
    refused = [
        f"UPDATE {name} SET actor_role = 'owner'",
        f"UPDATE {name} SET vehicle_key = vehicle_key WHERE id = 1",
        f"DELETE FROM {name}",
        f"DELETE FROM {name} WHERE id = 1",
    ]
    if engine.dialect.name == "postgresql":  # a statement trigger: even when no row matches
        refused.append(f"DELETE FROM {name} WHERE id = -1")
        # The partitioned table's key holds its partition key (migration 0008).
        refused.append(
            f"INSERT INTO {name} (id, at, actor, actor_role, purpose, vehicle_key) "
            "VALUES (1, '2026-11-25 02:00:00+00', 'x', 'owner', 'forged', '\\x00') "
            "ON CONFLICT (id, at) DO UPDATE SET actor_role = 'owner'"
        )
    else:  # a replace deletes the old row without the delete trigger: refused on its own
        refused.append(
            f"INSERT OR REPLACE INTO {name} (id, at, actor, actor_role, purpose, vehicle_key) "
            "VALUES (1, '2026-01-01 00:00:00', 'x', 'owner', 'forged', x'00')"
        )
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(select(table.c.actor_role)).scalars().all() == ["police"]
    # The vehicle's index keys on the key's first bytes (migration 0022).
    assert access_log_indexes(engine) == {
        "ix_access_log_vehicle_prefix": ["substr(vehicle_key, 1, 8)"]
    }


def test_the_listing_tells_apart_vehicles_whose_keys_share_their_first_bytes(
    engine: Engine,
) -> None:
    """A vehicle's entries are found by its key's first 8 bytes (migration 0022); a
    vehicle whose key begins alike is not listed with it."""
    store = SqlAccessLogStore(engine)
    mine, other = b"\x07" * 8 + b"a" * 24, b"\x07" * 8 + b"b" * 24
    owner = ("anonymous", "owner", "coverage_query")
    store.append(
        [
            AccessRow(T0 - timedelta(days=2), *owner, mine, None),
            AccessRow(T0 - timedelta(days=1), "officer-001", "police", "bulk_verify", other, None),
            AccessRow(T0, *owner, mine, None),
        ]
    )
    since = T0 - timedelta(days=30)
    assert [e.at for e in store.newest(mine, since, 10)] == [T0, T0 - timedelta(days=2)]
    assert [e.actor_role for e in store.newest(other, since, 10)] == ["police"]
    assert store.newest(b"\x07" * 8 + b"c" * 24, since, 10) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_listing_searches_the_key_prefix_index(engine: Engine) -> None:
    """The listing's WHERE names the index's very expression, so SQLite searches the index
    rather than scanning the log (a bound ``substr`` argument would not match it)."""
    plans: list[str] = []

    def explain(_conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("SELECT") and "access_log" in statement:
            found = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            plans.extend(row[3] for row in found)

    event.listen(engine, "before_cursor_execute", explain)
    SqlAccessLogStore(engine).newest(INDEX(VIN), T0 - timedelta(days=30), 10)
    assert any("USING INDEX ix_access_log_vehicle_prefix" in step for step in plans), plans
    assert not any(step.startswith("SCAN") for step in plans), plans


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_answer_paths_log_leaves_the_readers_file_alone(
    container: Container,
) -> None:
    """The readers' file gets no write-ahead-log frame from the access log: its writes go
    to the log's own file (docs/DECISIONS.md, "Access log")."""
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    container.report_events.report(policy_event(), insurer_code="PICC")
    engine = container.engine
    with engine.connect() as conn:
        # (busy, frames in the WAL, frames checkpointed): an empty WAL to start from.
        assert tuple(conn.exec_driver_sql("PRAGMA main.wal_checkpoint(TRUNCATE)").one()) == (
            0, 0, 0,
        )  # fmt: skip
    query = CoverageQuery("苏E12345", vin_last6=VIN[-6:], at="2025-06-01T00:00:00+08:00")
    run_reads(container, lambda: container.coverage.query(query))
    run_reads(container, lambda: container.coverage.query(query))
    assert container.access_log.flush_now()

    with engine.connect() as conn:
        busy, main_frames, _ = conn.exec_driver_sql("PRAGMA main.wal_checkpoint").one()
        _, log_frames, _ = conn.exec_driver_sql("PRAGMA audit.wal_checkpoint").one()
        in_main = conn.exec_driver_sql(
            "SELECT count(*) FROM main.sqlite_master WHERE name = 'access_log'"
        ).scalar_one()
        logged = conn.exec_driver_sql("SELECT purpose FROM audit.access_log").scalars().all()
    assert (busy, main_frames) == (0, 0)
    assert log_frames > 0  # the check can see frames: the flush's are in the log's WAL
    assert in_main == 0
    assert logged == ["coverage_query", "coverage_query"]
    database = engine.url.database
    assert database is not None
    with closing(sqlite3.connect(access_log_file(database))) as side:  # the file itself
        assert side.execute("SELECT count(*) FROM access_log").fetchone() == (2,)


def test_listing_is_one_vehicles_newest_first_within_the_window(engine: Engine) -> None:
    store = SqlAccessLogStore(engine)
    owner = Reader("anonymous", "owner", "coverage_query")
    writer = AccessLogWriter(store, INDEX)
    for days in (400, 30, 2, 1):
        writer.record(owner, VIN, T0 - timedelta(days=days))
    writer.record(POLICE, VIN_B, T0)

    async def listed() -> list[Any]:
        return await writer.entries(VIN, since=T0 - timedelta(days=365), limit=2)

    found = asyncio.run(listed())
    assert [(e.at, e.actor_role) for e in found] == [
        (T0 - timedelta(days=1), "owner"),
        (T0 - timedelta(days=2), "owner"),
    ]
    assert len(store.newest(INDEX(VIN), T0 - timedelta(days=365), 500)) == 3
    assert store.newest(INDEX(VIN_B), T0 - timedelta(days=365), 500)[0].actor_role == "police"
    writer.close()


def test_entries_recorded_without_a_server_are_written_when_the_container_closes(
    container: Container,
) -> None:
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    container.report_events.report(policy_event(), insurer_code="PICC")
    query = CoverageQuery("苏E12345", vin_last6=VIN[-6:], at="2025-06-01T00:00:00+08:00")
    run_reads(container, lambda: container.coverage.query(query))
    assert count(container.engine) == 0
    container.close()
    assert count(container.engine) == 1


class SlowFirstWrite(SqlAccessLogStore):
    """The database refuses the first write, slowly: a shutdown comes in meanwhile."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.attempts = 0

    def append(self, rows: Sequence[AccessRow]) -> None:
        self.attempts += 1
        if self.attempts == 1:
            time.sleep(0.3)
            raise OSError("the database went away")
        super().append(rows)


def test_a_shutdown_during_a_failing_write_keeps_the_batch_for_the_last_flush(
    engine: Engine,
) -> None:
    async def scenario() -> None:
        writer = AccessLogWriter(SlowFirstWrite(engine), INDEX, flush_interval_s=0.01)
        await writer.start()
        for n in range(20):
            writer.record(POLICE, VIN, T0 + timedelta(seconds=n))
        await asyncio.sleep(0.1)  # the flusher is inside the first, failing write
        await writer.stop()  # cancels the flusher mid-write, then flushes what waits
        writer.close()

    asyncio.run(scenario())
    assert count(engine) == 20


def test_every_column_of_a_batch_reads_back_as_written(engine: Engine) -> None:
    """Runs of rows sharing their columns and rows that share nothing, NULLs, non-ASCII,
    microseconds and two months in one batch (PostgreSQL: one COPY whose bytes the store
    builds itself). The store writes a batch in the vehicle index's order, each vehicle's
    entries in the order given."""
    store = SqlAccessLogStore(engine)
    late = datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    rows = [
        *(
            AccessRow(T0, "officer-001", "police", "accident", INDEX(f"V{n}"), "req-1")
            for n in range(3)
        ),
        AccessRow(
            late, "交警-张三", "police", "roadside_check", INDEX("V9"), None, "案-2026-1", "hit"
        ),
        AccessRow(T0, "anonymous", "owner", "coverage_query", INDEX("V0"), 'r"\\\t\n', None, None),
        AccessRow(
            late + timedelta(microseconds=1), "PICC", "insurer", "dispute", b"\x00" * 32, None
        ),
    ]
    store.append(rows)
    table = access_log_table(engine)
    columns = [table.c[name] for name in AccessRow._fields]
    with engine.connect() as conn:
        read = [AccessRow(*row) for row in conn.execute(select(*columns).order_by(table.c.id))]
    assert read == sorted(rows, key=lambda row: row.vehicle_key)
    assert [r for r in read if r.vehicle_key == INDEX("V0")] == [rows[0], rows[4]]
