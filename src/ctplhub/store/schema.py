"""Engines and schema migrations (Alembic) for both SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine: SQLite in WAL mode with foreign keys on; PostgreSQL via psycopg 3.

    Statement parameters never appear in error messages (``hide_parameters``): they hold
    plates, VINs and encrypted personal data, and errors end up in logs.
    """
    kwargs.setdefault("hide_parameters", True)
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
    # No pre-ping: it is a round trip on every checkout. A connection broken by a
    # database restart fails one request and is replaced.
    kwargs.setdefault("pool_recycle", 3600)
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
