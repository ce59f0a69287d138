"""The access log partitioned by month on PostgreSQL (migration 0008; DESIGN §5.3): rows
land in their month, a missing month is made on demand (once, when two writers meet it
at once), the listing reads only the months it covers, every partition refuses UPDATE
and DELETE, and the migration keeps every row and id. (SQLite keeps one table: the
access-log tests of test_access_log_store.py run there unchanged.)"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError

from ctplhub.services.ports import AccessRow
from ctplhub.store import access_log_partitions
from ctplhub.store.access_log_partitions import month_of, next_month, partition_name
from ctplhub.store.repositories.access_log import SqlAccessLogStore
from ctplhub.store.schema import alembic_config, make_engine, migrate
from helpers import blank_engine

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

KEY = b"\x07" * 32
OTHER = b"\x08" * 32


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = make_engine(database_url)
    yield built
    built.dispose()


def row(at: datetime, key: bytes = KEY, role: str = "owner") -> AccessRow:
    return AccessRow(at, "anonymous", role, "coverage_query", key, None)


def partitions(conn: Connection) -> dict[str, str]:
    """Every partition of access_log and its bounds (shown in UTC)."""
    conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    found = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST('access_log' AS regclass)"
        )
    ).all()
    return {name: bound for name, bound in found}


def drop_months(engine: Engine, *months: date) -> None:
    """Months a test must find missing (the session's database keeps what tests made)."""
    with engine.begin() as conn:
        for month in months:
            conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(month)}"))


def rows_by_partition(engine: Engine) -> list[tuple[str, datetime]]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT tableoid::regclass::text, at FROM access_log ORDER BY at")
        ).all()
    return [(name, at) for name, at in found]


def test_rows_land_in_their_months_and_the_listing_spans_months(engine: Engine) -> None:
    store = SqlAccessLogStore(engine)
    instants = [
        datetime(2030, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2030, 2, 1, tzinfo=UTC),  # the first instant of a month is in it
        datetime(2030, 3, 15, 12, tzinfo=UTC),
        datetime(2030, 5, 2, tzinfo=UTC),
    ]
    store.append([row(at) for at in instants] + [row(instants[2], OTHER, "police")])

    assert rows_by_partition(engine) == [
        ("access_log_2030_01", instants[0]),
        ("access_log_2030_02", instants[1]),
        ("access_log_2030_03", instants[2]),
        ("access_log_2030_03", instants[2]),
        ("access_log_2030_05", instants[3]),
    ]
    # Newest first across the months, one vehicle's only, from ``since`` on.
    listed = store.newest(KEY, datetime(2030, 1, 1, tzinfo=UTC), 500)
    assert [e.at for e in listed] == instants[::-1]
    assert {e.actor_role for e in listed} == {"owner"}
    since_february = store.newest(KEY, datetime(2030, 2, 1, tzinfo=UTC), 500)
    assert [e.at for e in since_february] == instants[:0:-1]
    assert [e.at for e in store.newest(KEY, datetime(2030, 1, 1, tzinfo=UTC), 2)] == [
        instants[3],
        instants[2],
    ]


def test_a_month_without_a_partition_is_made_like_those_of_the_migration(
    engine: Engine,
) -> None:
    month = date(2040, 7, 1)
    drop_months(engine, month)
    with engine.connect() as conn:
        assert partition_name(month) not in partitions(conn)

    SqlAccessLogStore(engine).append([row(datetime(2040, 7, 9, tzinfo=UTC))])

    with engine.connect() as conn:
        assert partitions(conn)[partition_name(month)] == (
            "FOR VALUES FROM ('2040-07-01 00:00:00+00') TO ('2040-08-01 00:00:00+00')"
        )
    assert rows_by_partition(engine) == [("access_log_2040_07", datetime(2040, 7, 9, tzinfo=UTC))]
    # The migration made the current month: the one made here has the same columns,
    # defaults, indexes and triggers.
    current = partition_name(month_of(datetime.now(UTC)))
    assert shape(engine, "access_log_2040_07") == shape(engine, current)


def shape(engine: Engine, table: str) -> dict[str, Any]:
    """What makes a table what it is, with its own name taken out."""
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT column_name, data_type, character_maximum_length, is_nullable, "
                "column_default FROM information_schema.columns WHERE table_name = :t "
                "ORDER BY ordinal_position"
            ),
            {"t": table},
        ).all()
        indexes = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = :t ORDER BY indexname"),
            {"t": table},
        ).scalars()
        triggers = conn.execute(
            text(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = CAST(:t AS regclass) ORDER BY tgname"
            ),
            {"t": table},
        ).all()
    return {
        "columns": [tuple(c) for c in columns],
        "indexes": [i.replace(table, "<table>") for i in indexes],
        "triggers": [(name, d.replace(table, "<table>")) for name, d in triggers],
    }


@pytest.fixture
def application_role(engine: Engine) -> Iterator[str]:
    """A role with the rights the application needs on the log, and not its ownership."""
    role = "ctplhub_app" + os.environ.get("CTPLHUB_TEST_DB_TAG", "")
    with engine.begin() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        conn.execute(text(f"CREATE ROLE {role}"))
        conn.execute(text(f"GRANT SELECT, INSERT ON access_log TO {role}"))
        conn.execute(text(f"GRANT USAGE ON SEQUENCE access_log_id_seq TO {role}"))
    yield role
    with engine.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))


def test_a_role_that_does_not_own_the_log_makes_a_month_through_the_function(
    database_url: str, engine: Engine, application_role: str
) -> None:
    """Attaching a partition needs the log's ownership, which the application's role
    should not have: the month is made by the SECURITY DEFINER function of 0008."""
    month = date(2044, 4, 1)
    drop_months(engine, month)
    limited = make_engine(database_url, connect_args={"options": f"-c role={application_role}"})
    try:
        with limited.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() == application_role
            current = partition_name(month_of(datetime.now(UTC)))
            with pytest.raises(DBAPIError, match="must be owner"):
                conn.execute(text(f"ALTER TABLE access_log DETACH PARTITION {current}"))
        SqlAccessLogStore(limited).append([row(datetime(2044, 4, 2, tzinfo=UTC))])
    finally:
        limited.dispose()
    assert rows_by_partition(engine) == [("access_log_2044_04", datetime(2044, 4, 2, tzinfo=UTC))]


def test_init_makes_the_current_and_the_next_month(engine: Engine) -> None:
    drop_months(engine, date(2045, 12, 1), date(2046, 1, 1))
    SqlAccessLogStore(engine).prepare(datetime(2045, 12, 31, 23, tzinfo=UTC))
    with engine.connect() as conn:
        made = partitions(conn)
    assert {"access_log_2045_12", "access_log_2046_01"} <= made.keys()


def test_two_writers_meeting_a_new_month_at_once_make_it_once_and_lose_nothing(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both writers find the month missing before either makes it (the barrier holds
    them there): the advisory lock lets one make it, and the other finds it made."""
    month = date(2041, 3, 1)
    drop_months(engine, month)
    barrier = threading.Barrier(2, timeout=10)
    made: list[bool] = []
    real = access_log_partitions.ensure_month

    def meeting(conn: Connection, wanted: date) -> bool:
        barrier.wait()
        made.append(real(conn, wanted))
        return made[-1]

    monkeypatch.setattr(access_log_partitions, "ensure_month", meeting)
    engines = [make_engine(database_url) for _ in range(2)]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            at = datetime(2041, 3, 10, tzinfo=UTC) + timedelta(microseconds=n)
            SqlAccessLogStore(engines[n]).append(
                [row(at + timedelta(seconds=s)) for s in range(300)]
            )
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for built in engines:
            built.dispose()
    assert errors == []
    assert sorted(made) == [False, True]
    placed = rows_by_partition(engine)
    assert len(placed) == 600
    assert {name for name, _ in placed} == {"access_log_2041_03"}


def test_a_month_detached_since_it_was_seen_is_made_again_on_the_retry(engine: Engine) -> None:
    """An operator detached a month this process had written (retention, or a mistake):
    the write fails once, and the writer's retry finds the month missing and makes it."""
    month = date(2043, 2, 1)
    drop_months(engine, month)
    store = SqlAccessLogStore(engine)
    store.append([row(datetime(2043, 2, 3, tzinfo=UTC))])
    drop_months(engine, month)

    with pytest.raises(Exception, match="no partition"):
        store.append([row(datetime(2043, 2, 4, tzinfo=UTC))])
    store.append([row(datetime(2043, 2, 4, tzinfo=UTC))])
    assert rows_by_partition(engine) == [("access_log_2043_02", datetime(2043, 2, 4, tzinfo=UTC))]


def test_update_and_delete_are_refused_on_the_log_and_on_every_partition(
    engine: Engine,
) -> None:
    now = datetime.now(UTC)
    made_on_demand = date(2042, 5, 1)
    drop_months(engine, made_on_demand)
    store = SqlAccessLogStore(engine)
    store.append([row(now), row(datetime(2042, 5, 6, tzinfo=UTC))])
    targets = ["access_log", partition_name(month_of(now)), partition_name(made_on_demand)]
    for table in targets:
        for statement in (
            f"UPDATE {table} SET actor_role = 'admin'",
            f"UPDATE {table} SET at = at + interval '1 second'",
            f"DELETE FROM {table}",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
    assert len(rows_by_partition(engine)) == 2
    # TRUNCATE, the test suite's reset, still empties every partition.
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE access_log RESTART IDENTITY"))
    assert rows_by_partition(engine) == []
    store.append([row(now)])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM access_log")).scalar_one() == 1


def test_the_owners_listing_reads_only_the_months_since_its_start(engine: Engine) -> None:
    now = datetime.now(UTC)
    instants = [now - timedelta(days=days) for days in (420, 240, 60, 0)]
    store = SqlAccessLogStore(engine)
    store.append([row(at) for at in instants])
    since = now - timedelta(days=90)
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert [e.at for e in store.newest(KEY, since, 500)] == instants[:1:-1]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    [(statement, parameters)] = [s for s in statements if "access_log" in s[0]]
    with engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())
        covered = {
            name for name, bound in partitions(conn).items() if month_of(since) <= _month_from(name)
        }
    scanned = set(re.findall(r"access_log_\d{4}_\d{2}", plan))
    assert scanned == covered
    assert partition_name(month_of(instants[0])) not in scanned
    assert partition_name(month_of(instants[1])) not in scanned


def _month_from(name: str) -> date:
    year, month = name.rsplit("_", 2)[1:]
    return date(int(year), int(month), 1)


# --- migration 0008 ----------------------------------------------------------------


@pytest.fixture
def blank(database_url: str) -> Iterator[Engine]:
    """A PostgreSQL database with no schema at all, on the server of ``database_url``."""
    with blank_engine(database_url, "ctplhub_access_log_months") as engine:
        yield engine


_ALL = "SELECT id, at, actor, actor_role, purpose, vehicle_key, request_id FROM access_log"


def test_migration_0008_keeps_every_row_and_id_and_matches_a_fresh_database(
    blank: Engine, engine: Engine
) -> None:
    migrate(blank, "0007")
    with blank.begin() as conn:
        # Rows from the id sequence over 15 months, in no order of time, then ids drawn
        # and never used (as by a batch rolled back).
        conn.execute(
            text(
                "INSERT INTO access_log (at, actor, actor_role, purpose, vehicle_key, "
                "request_id) SELECT timestamptz '2025-11-30 23:30:00+00' + "
                "((g * 7919) % 420) * interval '1 day', 'officer-' || g, 'police', "
                "'bulk_verify', decode(md5(g::text), 'hex'), 'req-' || g "
                "FROM generate_series(1, 2000) g"
            )
        )
        conn.execute(text("SELECT nextval('access_log_id_seq') FROM generate_series(1, 5)"))
        before = conn.execute(text(f"{_ALL} ORDER BY id")).all()

    migrate(blank, "0008")

    with blank.connect() as conn:
        assert conn.execute(text(f"{_ALL} ORDER BY id")).all() == before
        held = conn.execute(text("SELECT count(DISTINCT tableoid) FROM access_log")).scalar_one()
        made = partitions(conn)
    months = {month_of(r.at) for r in before}
    assert held == len(months) == 15
    current = month_of(datetime.now(UTC))
    assert {partition_name(m) for m in {*months, current, next_month(current)}} == set(made)
    for name, at in rows_by_partition(blank):
        assert name == partition_name(month_of(at))
    # The sequence goes on where it was, past the gap (written as today's writer writes:
    # with the columns the later migrations added to every month, 0015's references).
    migrate(blank)
    SqlAccessLogStore(blank).append([row(datetime.now(UTC))])
    with blank.connect() as conn:
        assert conn.execute(text("SELECT max(id) FROM access_log")).scalar_one() == 2006
    # Migrated and fresh (the session's database, migrated from nothing) alike.
    for table in ("access_log", partition_name(current)):
        assert shape(blank, table) == shape(engine, table)


def test_migration_0008_downgrades_to_one_table_with_every_row(blank: Engine) -> None:
    migrate(blank)  # today's writer writes the columns of the head revision
    SqlAccessLogStore(blank).append(
        [row(datetime(2026, 10, 3, tzinfo=UTC)), row(datetime.now(UTC), OTHER)]
    )
    with blank.connect() as conn:
        before = conn.execute(text(f"{_ALL} ORDER BY id")).all()
    config = alembic_config()
    with blank.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")

    with blank.connect() as conn:
        assert conn.execute(text(f"{_ALL} ORDER BY id")).all() == before
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname = 'access_log'")
        ).scalar_one()
        left = conn.execute(
            text("SELECT count(*) FROM pg_class WHERE relname ~ '^access_log_[0-9]'")
        ).scalar_one()
    assert (kind, left) == ("r", 0)
    with pytest.raises(DBAPIError, match="append-only"), blank.begin() as conn:
        conn.execute(text("DELETE FROM access_log"))
    migrate(blank, "0008")  # and up again
    with blank.connect() as conn:
        assert conn.execute(text(f"{_ALL} ORDER BY id")).all() == before
