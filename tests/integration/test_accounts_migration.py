"""Migration 0003 on a database that already has accounts (both engines): tokens issued
before it get 30 days from the upgrade, not for ever and not none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from ctplhub.store.schema import make_engine, migrate
from ctplhub.store.tables import staff_sessions, users
from helpers import blank_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no schema at all, on each engine."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    server: str = request.getfixturevalue("postgres_url")  # skips, or fails in CI, if down
    with blank_engine(server, "ctplhub_accounts_migration") as engine:
        yield engine


def test_existing_tokens_get_thirty_days_and_sessions_get_a_table(blank: Engine) -> None:
    migrate(blank, "0002")
    created = datetime(2026, 1, 1, tzinfo=UTC)
    with blank.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, token_hash, created_at) "
                "VALUES ('officer-1', 'police', :hash, :at)"
            ),
            {"hash": "ab" * 32, "at": created if blank.dialect.name != "sqlite" else "2026-01-01"},
        )

    before = datetime.now(UTC)
    migrate(blank)

    with blank.connect() as conn:
        expires, password = conn.execute(
            select(users.c.token_expires_at, users.c.password_hash)
        ).one()
        assert conn.execute(select(staff_sessions)).all() == []
    assert password is None
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
