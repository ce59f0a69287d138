"""Migration 0019 (regulators' statistics) on both engines: the upgrade makes the five
tables as ``store/tables.py`` declares them, the downgrade removes them and nothing
else."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from ctplhub.store.schema import alembic_config, migrate
from ctplhub.store.tables import (
    stats_last_cover,
    stats_policies,
    stats_renewals,
    stats_vehicles,
    stats_watermark,
)

BEFORE = "0018"  # the revision 0019 upgrades from
TABLES = (stats_watermark, stats_policies, stats_vehicles, stats_renewals, stats_last_cover)


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
