"""Engines and schema migrations (Alembic) for both SQLite and PostgreSQL.

On SQLite the access log lives in a file of its own (``access_log_file``), attached to
every connection of the engine as the schema ``audit``: its INSERTs, every 200 ms under
load, would otherwise grow the write-ahead log of the file the coverage readers read
without pause, so that WAL is rarely reset and every page a reader looks up is first
looked up in a longer WAL index (docs/DECISIONS.md, "Access log"; docs/PERFORMANCE.md
§6). The readers (``store/readers/sqlite.py``) open the main file alone.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"

# The schema name under which an SQLite connection sees the access log's own file.
ACCESS_LOG_SCHEMA = "audit"
_IN_MEMORY = ":memory:"


def access_log_file(database: str | Path) -> Path:
    """The file that holds the access log of the SQLite database ``database``, beside it:
    ``var/ctplhub.db`` -> ``var/ctplhub.access-log.db``. One database is both files: a
    copy or a backup takes the two, each with its ``-wal`` (or checkpointed first)."""
    path = Path(database)
    return path.with_name(f"{path.stem}.access-log{path.suffix}")


_ACCESS_LOG_CACHE_KIB = 64 << 10


def attach_access_log(dbapi_connection: Any, database: str | None) -> None:
    """Attach the access log's file to a driver connection of the SQLite ``database``
    (``None`` or ``:memory:``: an in-memory one), in WAL mode like the main file."""
    where = _IN_MEMORY if database in (None, "", _IN_MEMORY) else str(access_log_file(database))
    cursor = dbapi_connection.cursor()
    cursor.execute(f"ATTACH DATABASE ? AS {ACCESS_LOG_SCHEMA}", (where,))
    cursor.execute(f"PRAGMA {ACCESS_LOG_SCHEMA}.journal_mode=WAL")
    cursor.execute(f"PRAGMA {ACCESS_LOG_SCHEMA}.synchronous=NORMAL")
    # A bulk verify appends 10,000 entries whose vehicle keys land all over the vehicle
    # index: pages read once stay cached for the next (the cache grows only as used).
    cursor.execute(f"PRAGMA {ACCESS_LOG_SCHEMA}.cache_size=-{_ACCESS_LOG_CACHE_KIB}")
    cursor.close()


class AccessLogFileMissing(RuntimeError):
    """An SQLite database whose schema puts the access log in its own file, without that
    file: a copy or restore that took one file of the two."""


def check_access_log_file(engine: Engine) -> None:
    """Refuse an SQLite database migrated past 0005 whose access log file is missing.

    SQLite creates an empty file for an ``ATTACH`` of a missing one, so without this check
    a server would start, fail every write of the access log and drop what it queued: a
    registry that stops recording who read whose data. Restore both files together."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        found = {
            (schema, name)
            for schema in ("main", ACCESS_LOG_SCHEMA)
            for (name,) in conn.exec_driver_sql(
                f"SELECT name FROM {schema}.sqlite_master "
                "WHERE type = 'table' AND name IN ('access_log', 'alembic_version')"
            )
        }
    migrated = ("main", "alembic_version") in found
    if migrated and not found & {("main", "access_log"), (ACCESS_LOG_SCHEMA, "access_log")}:
        where = make_url(str(engine.url)).database or _IN_MEMORY
        raise AccessLogFileMissing(
            f"the access log of this SQLite database is missing: {access_log_file(where)} "
            "must be restored together with the database file (docs/DECISIONS.md, "
            '"Access log")'
        )


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine: SQLite in WAL mode with foreign keys on and the access log's file
    attached; PostgreSQL via psycopg 3.

    Statement parameters never appear in error messages (``hide_parameters``): they hold
    plates, VINs and encrypted personal data, and errors end up in logs.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != _IN_MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _close_what_returns_after_dispose(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA main.journal_mode=WAL")
            cursor.execute("PRAGMA main.synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            attach_access_log(dbapi_conn, path)

        return engine
    # One connection per thread of the server's thread pool (anyio's default is 40): a
    # smaller pool makes connections churn under load, and each new one costs a fork.
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 10)
    # No pre-ping: it is a round trip on every checkout. A connection broken by a
    # database restart fails one request and is replaced.
    kwargs.setdefault("pool_recycle", 3600)
    engine = create_engine(url, **kwargs)
    _close_what_returns_after_dispose(engine)
    return engine


_BORN_IN = "ctplhub_pool"  # a connection's ``record.info`` key: the pool that opened it


def _close_what_returns_after_dispose(engine: Engine) -> None:
    """A connection still checked out when ``engine.dispose()`` runs (a thread of the
    server's, a job runner's chunk, a stream not yet finished) goes back, when its user
    is done, to the pool that was disposed: a pool nothing uses any more, where it would
    stay open until the garbage collector found the pool and the driver complained of a
    connection deleted while open. It is closed instead as it comes back. (Weak
    references only: the listeners live in the pool, and the pool must not keep its
    engine alive.)"""
    owner = weakref.ref(engine)

    @event.listens_for(engine, "connect")
    def _born(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        current = owner()
        if current is not None:
            record.info[_BORN_IN] = weakref.ref(current.pool)

    @event.listens_for(engine, "checkin")
    def _back(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        born, current = record.info.get(_BORN_IN), owner()
        if dbapi_connection is None or born is None:
            return
        if current is None or born() is not current.pool:
            record.close()


def alembic_config() -> Config:
    from alembic.config import Config  # only migrations need Alembic, not every process

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``; safe to run on every start."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if revision == "head":
        check_access_log_file(engine)
