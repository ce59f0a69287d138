"""A database that is full or restarting answers ``503 storage_unavailable`` with
``Retry-After``, never a bare 500, stores nothing of the failed transaction, and the
same request succeeds once the storage is back (issue 13, item 5; ``store/failures.py``).

Real failures on both engines, no mocks: SQLite's own "database or disk is full"
(``SQLITE_FULL``), made by capping the file at its current size with ``PRAGMA
max_page_count`` on every connection of the app's engine; PostgreSQL's connections cut
by the server (``pg_terminate_backend``, what a restart does to them). The disk-full
fault on a real file system is ``bench/faults/disk_full.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.store.schema import make_engine
from helpers import VIN, InsurerAccount, event

BATCH = [event(policy_no=f"S{i:04d}", owner_name=f"李{i}") for i in range(300)]


def stored(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM policy_events")).scalar_one())


def cap_sqlite_file(container: Container) -> Callable[[], None]:
    """Every new connection sees the file as full at its current size; returns the undo."""
    with container.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    def cap(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    sa_event.listen(container.engine, "connect", cap)
    container.engine.dispose()

    def undo() -> None:
        sa_event.remove(container.engine, "connect", cap)
        container.engine.dispose()

    return undo


def cut_postgres_connections(container: Container) -> Callable[[], None]:
    """The server ends every connection of the app's pools, as a restart would; the pools
    find out on their next use. Nothing to undo: new connections work."""
    with container.engine.connect() as conn:  # the pool holds a connection to cut
        conn.execute(text("SELECT 1"))
    other = make_engine(container.settings.database_url, pool_size=1, max_overflow=0)
    try:
        with other.connect() as conn:
            cut = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        other.dispose()
    assert cut >= 1
    return lambda: None


def test_a_write_the_storage_cannot_take_is_503_then_succeeds_when_it_can(
    container: Container, picc: InsurerAccount, client: TestClient
) -> None:
    sqlite = container.engine.dialect.name == "sqlite"
    undo = cap_sqlite_file(container) if sqlite else cut_postgres_connections(container)
    try:
        response = picc.api.request(
            "POST",
            "/v1/policy-events/batch",
            content=b"\n".join(orjson.dumps(e) for e in BATCH),
            content_type="application/x-ndjson",
        )
    finally:
        undo()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert stored(container) == 0  # the batch's transaction rolled back whole

    again = picc.api.report_batch(BATCH)
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (300, 0, 0)
    assert stored(container) == 300


def test_owner_queries_survive_the_database_closing_every_connection(
    container: Container, picc: InsurerAccount, client: TestClient
) -> None:
    """The read path's own pool (psycopg's) retries a read once on a fresh connection
    after a restart closed them all, instead of failing a request per dead connection
    (``store/readers/pool_reads.py``)."""
    if container.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's readers open a file: there is no connection a server can close")
    picc.api.report_event(event())
    query = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
    assert client.post("/v1/coverage/query", json=query).status_code == 200
    cut_postgres_connections(container)
    answers = [client.post("/v1/coverage/query", json=query).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
