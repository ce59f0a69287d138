"""Migration 0019 (regulators' statistics) on both engines: the upgrade makes the five
tables as ``store/tables.py`` declares them, the downgrade removes them and nothing
else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from ctplhub.store.schema import alembic_config, make_engine, migrate
from ctplhub.store.tables import (
    stats_last_cover,
    stats_policies,
    stats_renewals,
    stats_vehicles,
    stats_watermark,
)
from helpers import blank_engine

BEFORE = "0018"  # the revision 0019 upgrades from
TABLES = (stats_watermark, stats_policies, stats_vehicles, stats_renewals, stats_last_cover)


@pytest.fixture(params=["sqlite", "postgresql"])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no schema at all, on each engine."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    server: str = request.getfixturevalue("postgres_url")  # skips, or fails in CI, if down
    with blank_engine(server, "ctplhub_stats_migration") as engine:
        yield engine


def test_upgrade_makes_the_stats_tables_and_downgrade_removes_them(blank: Engine) -> None:
    migrate(blank, BEFORE)
    before = set(inspect(blank).get_table_names())
    assert not {t.name for t in TABLES} & before

    migrate(blank, "0019")
    found = inspect(blank)
    for table in TABLES:
        assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys())
        assert found.get_pk_constraint(table.name)["constrained_columns"] == [
            c.name for c in table.primary_key.columns
        ]
    assert "ix_stats_policies_vin" in {i["name"] for i in found.get_indexes("stats_policies")}

    config = alembic_config()
    with blank.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)
    assert set(inspect(blank).get_table_names()) == before
