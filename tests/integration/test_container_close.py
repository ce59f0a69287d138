"""``Container.close()`` while a connection is still in use elsewhere (a thread of the
server's, a verify job's chunk, a stream not yet finished): the engine's pool is disposed
under it, and the connection, given back later, must be closed, not left open in the
discarded pool until the garbage collector finds it (the driver then complains of a
connection deleted while open, in whichever test happens to be running). On both
engines; the store's engines all come from ``make_engine``."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import event, text

from ctplhub.bootstrap import build_container
from ctplhub.config import Settings
from helpers import Clock


def is_closed(dbapi_connection: Any) -> bool:
    if isinstance(dbapi_connection, sqlite3.Connection):
        try:
            dbapi_connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
            return True
        return False
    return bool(dbapi_connection.closed)  # psycopg


def test_a_connection_given_back_after_the_container_closed_is_closed(
    settings: Settings, clock: Clock
) -> None:
    container = build_container(settings, clock=clock)
    taken, done = threading.Event(), threading.Event()
    held: list[Any] = []
    errors: list[BaseException] = []

    def background_user() -> None:
        try:
            with container.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                held.append(conn.connection.dbapi_connection)
                taken.set()
                assert done.wait(60), "the test never let go"
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
            taken.set()

    thread = threading.Thread(target=background_user)
    thread.start()
    try:
        assert taken.wait(60)
        container.close()  # the user still holds its connection
    finally:
        done.set()
        thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    [dbapi_connection] = held
    assert is_closed(dbapi_connection)


def test_connections_given_back_to_a_live_engine_stay_pooled_and_open(
    settings: Settings, clock: Clock
) -> None:
    container = build_container(settings, clock=clock)
    try:
        with container.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            dbapi_connection = conn.connection.dbapi_connection
        assert not is_closed(dbapi_connection)
        with container.engine.connect() as again:  # the same one, from the pool
            assert again.connection.dbapi_connection is dbapi_connection
    finally:
        container.close()
    assert is_closed(dbapi_connection)  # disposed with the pool


def test_a_metrics_scrape_after_the_app_closed_reads_nothing_through_it(
    settings: Settings, clock: Clock
) -> None:
    """The per-insurer gauges are read through the app built last. Once its container
    closes, a scrape (any later test's ``REGISTRY`` read, in the suite) must not open a
    connection on the disposed engine, which nobody would close: the source of the
    suite's "deleted while still open" warning."""
    from prometheus_client import REGISTRY

    from ctplhub.bootstrap import build_app

    container = build_container(settings, clock=clock)
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    build_app(container)
    labels = {"insurer": "PICC"}
    assert REGISTRY.get_sample_value("ctplhub_insurer_stale", labels) is not None
    container.close()
    opened: list[object] = []
    event.listen(container.engine, "connect", lambda conn, record: opened.append(conn))
    assert REGISTRY.get_sample_value("ctplhub_insurer_stale", labels) is None
    assert opened == []
