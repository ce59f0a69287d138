"""Migration 0020 (the scheduled match's runs) on both engines: the upgrade makes the
table as ``store/tables.py`` declares it, the downgrade removes it and nothing else."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from ctplhub.store.schema import alembic_config, migrate
from ctplhub.store.tables import match_runs

BEFORE = "0019"  # the revision 0020 upgrades from
TABLES = {"match_runs"}


def test_upgrade_makes_the_match_runs_table_and_downgrade_removes_it(blank: Engine) -> None:
    migrate(blank, BEFORE)
    before = set(inspect(blank).get_table_names())
    assert not TABLES & before

    migrate(blank, "0020")
    found = inspect(blank)
    assert set(found.get_table_names()) >= TABLES
    for table in (match_runs,):
        assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys())
    assert found.get_pk_constraint("match_runs")["constrained_columns"] == ["run_date"]

    config = alembic_config()
    with blank.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)
    assert set(inspect(blank).get_table_names()) == before
