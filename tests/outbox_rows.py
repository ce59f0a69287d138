"""Rows in the reminder outbox without the deciding side: for the delivery tests and the
delivery benchmark. Subscriptions are sealed like the real ones (``Reminders.subscribe``)
so ``SqlOutbox.claim`` opens them; the policy they remind of need not exist."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert

from ctplhub.bootstrap import build_keyring
from ctplhub.security.keystore import load_keys
from ctplhub.security.unsubscribe import UnsubscribeTokens
from ctplhub.services.reminders import address_aad
from ctplhub.store.tables import reminders, subscriptions

VIN = "LSVAU218XN2183294"


def fill_outbox(
    engine: Engine,
    home: Path,
    addresses: Sequence[str],
    *,
    channel: str,
    due_at: datetime,
    language: str = "zh-CN",
    rule: str = "before_30d",
    vin: str = VIN,
) -> list[int]:
    """One subscription and one pending reminder per address, due at ``due_at``; returns
    the reminders' ids in the order of ``addresses``."""
    keys = load_keys(home)
    vault = build_keyring(keys, engine, home)
    tokens = UnsubscribeTokens(keys.blind_index_key)
    aad = address_aad(vin, channel)
    covered_until = due_at + timedelta(days=30)
    subscription_rows = []
    for address in addresses:
        salt = tokens.new_salt()
        subscription_rows.append(
            {
                "vin": vin,
                "channel": channel,
                "address_enc": vault.encrypt(address, aad=aad),
                "address_bidx": vault.blind_index(f"subscription|{channel}|{address}"),
                "language": language,
                "token_salt": salt,
                "token_hash": tokens.digest(tokens.token(salt)),
                "source": "owner",
                "created_at": due_at,
            }
        )
    ids: list[int] = []
    with engine.begin() as conn:
        for start in range(0, len(subscription_rows), 5_000):
            chunk = subscription_rows[start : start + 5_000]
            made = conn.execute(
                insert(subscriptions).returning(subscriptions.c.id, sort_by_parameter_order=True),
                chunk,
            )
            sub_ids = [row[0] for row in made]
            made = conn.execute(
                insert(reminders).returning(reminders.c.id, sort_by_parameter_order=True),
                [
                    {
                        "subscription_id": sid,
                        "insurer_code": "PICC",
                        "policy_no": f"PDAA2026{sid:012d}",
                        "rule": rule,
                        "vin": vin,
                        "covered_until": covered_until,
                        "state": "pending",
                        "due_at": due_at,
                        "next_attempt_at": due_at,
                        "attempts": 0,
                        "updated_at": due_at,
                    }
                    for sid in sub_ids
                ],
            )
            ids.extend(row[0] for row in made)
    return ids
