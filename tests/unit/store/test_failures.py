"""``store.failures.storage_unavailable``: judged by the driver's code, so a full file is
"unavailable" and a bug that SQLite also reports as ``OperationalError`` is not."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import InternalError, SQLAlchemyError

from ctplhub.store.failures import storage_unavailable
from notify_fixtures import free_port


def raised(*statements: str) -> BaseException:
    """The error the last statement raises on a fresh in-memory SQLite database."""
    with closing(sqlite3.connect(":memory:")) as conn:
        for statement in statements[:-1]:
            conn.execute(statement)
        with pytest.raises(sqlite3.Error) as caught:
            conn.execute(statements[-1])
    return caught.value


def test_a_full_database_is_unavailable_storage() -> None:
    full = raised(
        "CREATE TABLE t (x BLOB)",
        "PRAGMA max_page_count = 3",
        "INSERT INTO t VALUES (zeroblob(100000))",
    )
    assert "full" in str(full) and storage_unavailable(full)


def test_bugs_are_not_unavailable_storage() -> None:
    assert not storage_unavailable(raised("SELECT * FROM no_such_table"))
    assert not storage_unavailable(
        raised(
            "CREATE TABLE t (x PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"
        )
    )
    assert not storage_unavailable(ValueError("a bug"))


def test_the_driver_error_is_found_behind_sqlalchemys() -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
        conn.exec_driver_sql("PRAGMA max_page_count = 3")
        with pytest.raises(SQLAlchemyError) as caught:
            conn.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
    engine.dispose()
    wrapped = RuntimeError("a service's own error")
    wrapped.__cause__ = caught.value
    assert storage_unavailable(caught.value) and storage_unavailable(wrapped)


def test_an_error_on_a_connection_sqlalchemy_found_lost_is_unavailable_storage() -> None:
    # What psycopg raises through PgBouncer when the server went away mid-session (no
    # SQLSTATE; the connection is broken after it), as SQLAlchemy's dialect wraps it
    # once it judged the connection lost, and the same error on a connection that was not.
    orig = psycopg.InternalError("received 2 results from command 'BEGIN'")
    lost = InternalError("BEGIN", None, orig, connection_invalidated=True)
    kept = InternalError("BEGIN", None, orig, connection_invalidated=False)
    assert storage_unavailable(lost)
    assert not storage_unavailable(kept)


def test_redis_unreachable_is_unavailable_storage() -> None:
    with pytest.raises(redis.RedisError) as caught:
        redis.Redis(port=free_port(), socket_connect_timeout=0.5).ping()
    assert storage_unavailable(caught.value)
    assert not storage_unavailable(redis.ResponseError("WRONGTYPE a bug"))
