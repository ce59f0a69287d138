"""Choosing ``pg_dump``/``pg_restore`` by version, and handing them the connection in
``PG*`` variables (``store/backup_postgres.py``), against the tools on this machine."""

from __future__ import annotations

import shutil

import pytest

from ctplhub.store.backup_postgres import PgToolError, find_tool, libpq_environment


@pytest.fixture
def installed_major() -> int:
    if shutil.which("pg_dump") is None:
        pytest.skip("no pg_dump on this machine")
    return find_tool("pg_dump", 1).major


def test_a_tool_recent_enough_is_chosen(installed_major: int) -> None:
    tool = find_tool("pg_restore", installed_major)
    assert tool.major >= installed_major and tool.path.name == "pg_restore"


def test_a_too_old_tool_is_refused_naming_what_was_found(installed_major: int) -> None:
    with pytest.raises(PgToolError) as refused:
        find_tool("pg_dump", installed_major + 50)
    message = str(refused.value)
    assert f"({installed_major})" in message and "--pg-bin" in message


def test_the_password_travels_in_the_environment() -> None:
    env = libpq_environment("postgresql://app:s3cret@db.example:6543/registry")
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"]) == ("db.example", "6543", "app")
    assert (env["PGPASSWORD"], env["PGDATABASE"]) == ("s3cret", "registry")
