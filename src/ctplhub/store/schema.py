"""Engines and schema migrations (Alembic) for both SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, for_answers: bool = False, **kwargs: Any) -> Engine:
    """Create an engine: SQLite in WAL mode with foreign keys on; PostgreSQL via psycopg 3.

    ``for_answers`` makes the engine that coverage answers read through: autocommit (no
    ``BEGIN``/``ROLLBACK`` round trips around a single statement) and, on PostgreSQL,
    generic plans for prepared statements (see below).
    """
    if for_answers:
        kwargs.setdefault("isolation_level", "AUTOCOMMIT")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # One connection per thread of the server's thread pool (anyio's default is 40): a
    # smaller pool makes connections churn under load, and each new one costs a fork.
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 10)
    # No pre-ping: it is a round trip on every checkout, as much as a whole coverage
    # query. A connection broken by a database restart fails one request and is replaced.
    kwargs.setdefault("pool_recycle", 3600)
    if for_answers:
        # A coverage answer is a few index lookups by key, prepared by psycopg after its
        # fifth run; PostgreSQL would otherwise keep re-planning it with custom plans (a
        # millisecond of planning for a 0.07 ms lookup). Not for writers: a generic plan
        # made while a table is nearly empty can stay a sequential scan while a bulk
        # import grows it.
        kwargs.setdefault("connect_args", {"options": "-c plan_cache_mode=force_generic_plan"})
    return create_engine(url, **kwargs)


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


def current_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
