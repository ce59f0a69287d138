"""Migration 0003 on a database that already has accounts (both engines): tokens issued
before it get 30 days from the upgrade, not for ever and not none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text

from ctplhub.store.schema import migrate
from ctplhub.store.tables import staff_sessions, users


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
