"""Synthetic histories (services/risk_history.py) stored through the API, with their sent
reminders as outbox rows: for the forecast's integration tests."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from ctplhub.bootstrap import Container
from ctplhub.services.risk_history import SyntheticVehicle, history_events
from ctplhub.store.tables import reminders
from helpers import InsurerAccount
from outbox_rows import fill_outbox


def store(
    vehicles: list[SyntheticVehicle], insurers: dict[str, InsurerAccount], container: Container
) -> None:
    """Report each vehicle's events, and its sent reminders as outbox rows."""
    for vehicle in vehicles:
        for e in history_events(vehicle):
            insurers[e["insurer_code"]].api.report_event(e)
        for n, end in enumerate(vehicle.history.reminded_ends):
            [rid] = fill_outbox(
                container.engine,
                container.settings.home,
                [f"owner{n}@example.com"],
                channel="email",
                due_at=end - timedelta(days=30),
                vin=vehicle.history.vin,
            )
            with container.engine.begin() as conn:
                conn.execute(
                    update(reminders)
                    .where(reminders.c.id == rid)
                    .values(state="sent", sent_at=end - timedelta(days=30))
                )
