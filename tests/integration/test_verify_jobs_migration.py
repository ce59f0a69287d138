"""Migration 0016 (verify jobs) on both engines: the upgrade makes the two tables as
``store/tables.py`` declares them, the downgrade removes them and nothing else."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from ctplhub.store.schema import alembic_config, migrate
from ctplhub.store.tables import verify_job_chunks, verify_jobs

BEFORE = "0015"  # the revision 0016 upgrades from
TABLES = {"verify_jobs", "verify_job_chunks"}


def test_upgrade_makes_the_job_tables_and_downgrade_removes_them(blank: Engine) -> None:
    migrate(blank, BEFORE)
    before = set(inspect(blank).get_table_names())
    assert not TABLES & before

    migrate(blank, "0016")
    found = inspect(blank)
    assert set(found.get_table_names()) >= TABLES
    for table in (verify_jobs, verify_job_chunks):
        assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys())
    assert "ix_verify_job_chunks_state" in {
        i["name"] for i in found.get_indexes("verify_job_chunks")
    }

    config = alembic_config()
    with blank.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE)
    assert set(inspect(blank).get_table_names()) == before
