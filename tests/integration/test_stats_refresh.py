"""The statistics' refresh (DESIGN §11; docs/DECISIONS.md) on both engines: two
refreshes at once count every event once, and a policy endorsed onto another VIN leaves
the vehicle that held it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from ctplhub.bootstrap import Container
from ctplhub.services.stats import DayCount, LapseRow, RenewalRow, Statistics
from ctplhub.store.tables import stats_policies, stats_vehicles
from helpers import InsurerAccount
from stats_history import cpic, history, policy, vin

__all__ = ["cpic", "history"]  # fixtures, used by name

PERIOD = {"group_by": "insurer", "from": "2026-01-01", "to": "2026-06-30"}


Figures = tuple[tuple[RenewalRow, ...], tuple[LapseRow, ...], tuple[DayCount, ...]]


def figures(stats: Statistics) -> Figures:
    return (
        stats.renewals(PERIOD).rows,
        stats.lapses({}).rows,
        tuple(r for r in stats.expiring({}).rows if r.count),
    )


@pytest.mark.usefixtures("history")
def test_two_refreshes_at_once_count_each_event_once(container: Container) -> None:
    stats = container.stats
    assert stats is not None
    reports = []
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            reports.append(stats.refresh(settle=timedelta(0)))
        except BaseException as error:  # surfaced below, with the thread's own traceback
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sum(r.events for r in reports) == 13  # the history's events, each counted once
    renewals, lapses, expiring = figures(stats)
    assert [(r.key, r.due, r.lapsed) for r in renewals] == [("CPIC", 1, 1), ("PICC", 4, 2)]
    assert [(r.key, r.vehicles_lapsed) for r in lapses] == [("320500", 1), ("320600", 2)]
    assert len(expiring) == 1


@pytest.mark.usefixtures("history")
def test_a_policy_endorsed_onto_another_vin_moves_its_figures(
    container: Container, picc: InsurerAccount
) -> None:
    stats = container.stats
    assert stats is not None
    before = figures(stats)
    moved = policy(10, 9, "2025-07-01", "2026-07-01", event_type="endorse", version=2)
    assert picc.api.report_batch([moved])["accepted"] == 1
    stats.refresh(settle=timedelta(0))

    with container.engine.connect() as conn:
        holder = select(stats_policies.c.vin).where(stats_policies.c.policy_no == "PDAA0010")
        assert conn.execute(holder).scalar_one() == vin(9)
        held = select(stats_vehicles.c.vin).where(stats_vehicles.c.vin == vin(7))
        assert conn.execute(held).first() is None
    assert figures(stats) == before  # the same policy, on another vehicle
