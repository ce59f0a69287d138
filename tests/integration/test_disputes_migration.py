"""Migration 0014 (disputes) on both engines: the tables appear, the reminder outbox keeps
its rows and gains ``dispute_id`` (0 for them) with a key that allows one notice per
(dispute, step, subscription) and still one reminder per (policy, rule, subscription);
the downgrade removes the disputes and their notices and gives the old outbox back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from ctplhub.store.schema import alembic_config, migrate

BEFORE = "0013"
AT = datetime(2026, 2, 12, 2, 0, tzinfo=UTC).replace(tzinfo=None)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def reminder(conn: Any, rule: str, dispute_id: int | None = None) -> None:
    values: dict[str, Any] = {"rule": rule, "at": AT}
    columns = "subscription_id, insurer_code, policy_no, rule, vin, covered_until, state, "
    columns += "due_at, next_attempt_at, attempts, updated_at"
    params = ":sid, 'PICC', 'P1', :rule, 'LSVAU218XN2183294', :at, 'pending', :at, :at, 0, :at"
    if dispute_id is not None:
        columns += ", dispute_id"
        params += ", :dispute"
        values["dispute"] = dispute_id
    conn.execute(text(f"INSERT INTO reminders ({columns}) VALUES ({params})"), {"sid": 1, **values})


def test_upgrade_keeps_the_outbox_and_downgrade_gives_it_back(blank: Engine) -> None:
    migrate(blank, BEFORE)
    with blank.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscriptions (id, vin, channel, address_enc, address_bidx, "
                "language, token_salt, token_hash, source, created_at) VALUES (1, "
                "'LSVAU218XN2183294', 'email', :b, :b, 'zh-CN', :b, 'h', 'owner', :at)"
            ),
            {"b": b"x", "at": AT},
        )
        reminder(conn, "before_30d")

    migrate(blank)
    schema = inspect(blank)
    assert {"disputes", "dispute_history"} <= set(schema.get_table_names())
    keys = {u["name"]: u["column_names"] for u in schema.get_unique_constraints("reminders")}
    assert keys["uq_reminders_key"][-1] == "dispute_id"
    with blank.begin() as conn:
        assert conn.execute(text("SELECT rule, dispute_id FROM reminders")).all() == [
            ("before_30d", 0)
        ]
        reminder(conn, "dispute_escalated", 7)  # 17 characters: the rule widened
        reminder(conn, "dispute_escalated", 8)  # another dispute on the same policy
    with pytest.raises(IntegrityError), blank.begin() as conn:
        reminder(conn, "dispute_escalated", 7)  # the same step twice
    with pytest.raises(IntegrityError), blank.begin() as conn:
        reminder(conn, "before_30d")  # a policy reminder twice, as before

    downgrade(blank, BEFORE)
    schema = inspect(blank)
    assert "disputes" not in schema.get_table_names()
    keys = {u["name"]: u["column_names"] for u in schema.get_unique_constraints("reminders")}
    assert keys["uq_reminders_key"] == ["insurer_code", "policy_no", "rule", "subscription_id"]
    with blank.connect() as conn:
        assert conn.execute(text("SELECT rule FROM reminders")).scalars().all() == ["before_30d"]
    migrate(blank)  # and up again
