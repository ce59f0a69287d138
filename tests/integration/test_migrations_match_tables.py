"""The migrations build exactly the schema that ``store/tables.py`` describes, on both
engines: a table, column or index added to one and forgotten in the other fails here."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ctplhub.store.schema import make_engine
from ctplhub.store.tables import metadata


def _differences(database_url: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            with warnings.catch_warnings():
                # SQLite's reflection cannot read an expression's index (the access log's,
                # migration 0022); the access log is left out below anyway.
                warnings.filterwarnings(
                    "ignore", "autogenerate skipping metadata-specified expression-based index"
                )
                return [d for d in compare_metadata(context, metadata) if not _ignored(d)]
    finally:
        engine.dispose()


def _ignored(difference: Any) -> bool:
    """The access log lives apart by design: on SQLite in a file of its own (attached by
    ``store/schema.py``), on PostgreSQL in monthly partitions made as months come."""
    kind, thing = difference[0], difference[1]
    table = thing if kind.endswith("_table") else thing.table
    return bool(table.name == "access_log" or table.name.startswith("access_log_"))


def test_the_migrated_schema_is_the_one_tables_py_describes(database_url: str) -> None:
    assert _differences(database_url) == []
