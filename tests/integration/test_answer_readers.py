"""The awaited read path of answers gives what the synchronous repositories give, also
when many questions are read together (on PostgreSQL they share round trips)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from ctplhub.bootstrap import Container
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.services.check_coverage import CoverageQuery
from ctplhub.store.unit_of_work import SqlUnitOfWork
from helpers import VIN, VIN_B, Clock, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
VIN_C = with_vin_check_digit("LGBH52E0" + "0" + "EY123456")
# 苏E12345 moves from VIN to VIN_B on 2025-06-01; VIN then carries 苏E54321.
EVENTS = [
    event(policy_no="P-A-2025"),
    event(
        policy_no="P-A-2026",
        plate="苏E54321",
        occurred_at="2025-06-01T09:00:00+08:00",
        coverage_start="2026-03-01T00:00:00+08:00",
        coverage_end="2027-03-01T00:00:00+08:00",
    ),
    event(
        policy_no="P-B-2025",
        vin=VIN_B,
        occurred_at="2025-06-01T10:00:00+08:00",
        coverage_start="2025-06-02T00:00:00+08:00",
        coverage_end="2026-06-02T00:00:00+08:00",
    ),
    event(
        policy_no="P-C-2026",
        vin=VIN_C,
        plate="苏A11111",
        occurred_at="2026-01-01T10:00:00+08:00",
        coverage_start="2026-01-02T00:00:00+08:00",
        coverage_end="2027-01-02T00:00:00+08:00",
    ),
]
ASKS = [
    (plate, at)
    for plate in ("苏E12345", "苏E54321", "苏A11111", "苏Z00000")
    for at in (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 6, 1, 1, 30, tzinfo=UTC),  # between the two claims of that day
        datetime(2025, 7, 1, tzinfo=UTC),
        NOW,
    )
]


@pytest.fixture
def loaded(container: Container, clock: Clock) -> Container:
    clock.now = NOW
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    results = list(container.report_events.report_many(enumerate(EVENTS, 1), insurer_code="PICC"))
    assert [r.status for r in results] == ["accepted"] * len(EVENTS)
    return container


def _sorted(snapshot: tuple[list[Any], dict[str, list[Any]]]) -> tuple[list[Any], dict[str, Any]]:
    claims, states = snapshot
    return sorted(claims, key=lambda c: c.seq), {v: sorted(s, key=repr) for v, s in states.items()}


async def _read_together(container: Container) -> list[Any]:
    await container.reader.open()
    try:
        compact = [(plate.replace("·", ""), at) for plate, at in ASKS]
        return list(
            await asyncio.gather(*(container.reader.vehicle_snapshot(p, at) for p, at in compact))
        )
    finally:
        await container.reader.close()


def test_snapshots_read_together_equal_snapshots_read_alone(loaded: Container) -> None:
    together = asyncio.run(_read_together(loaded))
    for (plate, at), snapshot in zip(ASKS, together, strict=True):
        with SqlUnitOfWork(loaded.answers_engine) as uow:
            alone = uow.events.vehicle_snapshot(plate.replace("·", ""), at)
        assert _sorted(snapshot) == _sorted(alone), (plate, at)
    holders = {
        (plate, at): {c.vin for c in claims if c.plate == plate.replace("·", "")}
        for (plate, at), (claims, _) in zip(ASKS, together, strict=True)
    }
    # The plate moved: both vehicles are in its snapshot after the move, one before.
    assert holders[("苏E12345", datetime(2025, 3, 1, tzinfo=UTC))] == {VIN}
    assert holders[("苏E12345", NOW)] == {VIN, VIN_B}
    assert holders[("苏Z00000", NOW)] == set()


async def _answers(container: Container, *, together: bool) -> list[Any]:
    questions = [CoverageQuery(plate, None, None, at.isoformat()) for plate, at in ASKS]
    await container.reader.open()
    try:
        if together:
            return list(await asyncio.gather(*map(container.coverage.query, questions)))
        return [await container.coverage.query(q) for q in questions]
    finally:
        await container.reader.close()


def test_answers_read_together_equal_answers_read_alone(loaded: Container) -> None:
    together = asyncio.run(_answers(loaded, together=True))
    alone = asyncio.run(_answers(loaded, together=False))  # one read per question
    assert together == alone
    statuses = {ask: answer["status_class"] for ask, answer in zip(ASKS, together, strict=True)}
    assert statuses[("苏E12345", datetime(2025, 7, 1, tzinfo=UTC))] == "COVERED"
    assert statuses[("苏Z00000", NOW)] == "NO_RECORD"
