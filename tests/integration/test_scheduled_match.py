"""The daily match run by ``ctplhub worker`` by itself (DESIGN §11; issue 12), on both
engines with the clock moved by hand: not before the hour (Beijing time), once a day
however many workers look, recorded with its counts, shown by ``ctplhub match --status``,
taken over after a dead worker's claim ends, and retried after a failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container, build_container
from ctplhub.cli.main import app
from ctplhub.cli.worker import housekeeping
from ctplhub.config import Settings
from ctplhub.domain.instants import BEIJING
from ctplhub.services.match_schedule import MatchRun, ScheduledMatch
from ctplhub.store.repositories.match_runs import SqlMatchRuns
from helpers import Clock, InsurerAccount, bearer_headers, event

VIN_A = "LSVAU218XN2183294"  # registered, uninsured
VIN_B = "LFV2A21K6G3049982"  # registered, covered by PICC under another plate


@pytest.fixture
def register(client: TestClient, container: Container, picc: InsurerAccount) -> None:
    lines = [
        {"vin": VIN_A, "plate": "苏E11111", "region_code": "320505"},
        {"vin": VIN_B, "plate": "苏E22222", "region_code": "320506"},
    ]
    body = "\n".join(
        json.dumps(
            {
                **line,
                "vehicle_type": "passenger_small",
                "status": "registered",
                "as_of": "2025-01-01T00:00:00+08:00",
            },
            ensure_ascii=False,
        )
        for line in lines
    )
    fed = client.post(
        "/v1/register/vehicles",
        content=body.encode(),
        headers={
            **bearer_headers(container.users.add("vms", "registrar")),
            "Content-Type": "application/x-ndjson",
        },
    )
    assert fed.json()["accepted"] == 2, fed.text
    picc.api.report_event(
        event(
            vin=VIN_B,
            plate="苏E99999",
            coverage_start="2026-01-01T00:00:00+08:00",
            coverage_end="2027-01-01T00:00:00+08:00",
        )
    )


@pytest.fixture
def other_worker(settings: Settings, clock: Clock) -> Iterator[Container]:
    """A second ``ctplhub worker`` process's container on the same database."""
    built = build_container(settings, clock=clock)
    yield built
    built.close()


def beijing(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=BEIJING)


def schedule(container: Container, worker_id: str, **options: object) -> ScheduledMatch:
    return ScheduledMatch(
        container.enforcement,
        SqlMatchRuns(container.engine),
        worker_id=worker_id,
        **options,  # type: ignore[arg-type]
    )


def look(container: Container, match: ScheduledMatch, now: datetime) -> MatchRun | None:
    async def go() -> MatchRun | None:
        await container.reader.open()
        try:
            return await match.run_if_due(now)
        finally:
            await container.reader.close()

    return asyncio.run(go())


@pytest.mark.usefixtures("register")
def test_one_worker_a_day_runs_the_match_at_the_hour_and_records_it(
    container: Container, other_worker: Container, clock: Clock
) -> None:
    first = schedule(container, "worker-a", hour=2)
    second = schedule(other_worker, "worker-b", hour=2)
    clock.now = beijing(1, 1, 59)
    assert look(container, first, clock.now) is None  # not yet 02:00 in Beijing
    assert first.status() == []

    clock.now = beijing(1, 2, 0)
    run = look(container, first, clock.now)
    assert run is not None
    assert (run.run_date, run.at, run.status, run.claimed_by) == (
        "2026-06-01",
        beijing(1, 2),
        "done",
        "worker-a",
    )
    assert run.uninsured == 1 and run.unmatched == 1
    assert run.counts == {
        "uninsured_by_region": {"320505": 1},
        "unmatched_by_insurer": {"PICC": {"vin_not_registered": 0, "plate_differs": 1}},
    }
    assert run.duration_s is not None and run.duration_s >= 0
    # The other worker, and the first one a minute later, find the day done.
    assert look(other_worker, second, beijing(1, 2, 1)) is None
    assert look(container, first, beijing(1, 23, 59)) is None

    # The next Beijing day (00:30 UTC is 08:30 in Beijing): the other worker wins it.
    clock.now = beijing(2, 8, 30)
    assert look(other_worker, second, clock.now) is not None
    assert look(container, first, clock.now) is None
    assert [(r.run_date, r.claimed_by) for r in first.status()] == [
        ("2026-06-02", "worker-b"),
        ("2026-06-01", "worker-a"),
    ]


def test_a_dead_workers_claim_is_taken_over_and_a_failure_retried(
    container: Container, clock: Clock
) -> None:
    store = SqlMatchRuns(container.engine)
    at, lease = beijing(1, 2), timedelta(hours=1)
    assert store.claim("2026-06-01", at, "dead", at, lease, 3)
    # Its claim holds the day for the lease, then another worker takes it over.
    assert not store.claim("2026-06-01", at, "alive", at + timedelta(minutes=59), lease, 3)
    assert store.claim("2026-06-01", at, "alive", at + lease, lease, 3)
    store.fail("2026-06-01", "alive", at + lease, at + lease + timedelta(minutes=15), "Boom")
    [failed] = store.latest(5)
    assert (failed.status, failed.error, failed.attempts) == ("failed", "Boom", 2)
    assert not store.claim("2026-06-01", at, "alive", at + lease, lease, 3)  # not yet
    retry = at + lease + timedelta(minutes=15)
    assert store.claim("2026-06-01", at, "alive", retry, lease, 3)
    store.fail("2026-06-01", "alive", retry, retry, "Boom")
    assert not store.claim("2026-06-01", at, "alive", retry + lease, lease, 3)  # 3 tries a day


@pytest.mark.usefixtures("register")
def test_the_workers_housekeeping_runs_the_match_and_match_status_shows_it(
    container: Container, clock: Clock, database_url: str, home: Path
) -> None:
    clock.now = beijing(1, 3)

    async def one_pass() -> None:
        stop = asyncio.Event()
        await container.reader.open()
        try:
            task = asyncio.create_task(housekeeping(container, stop, clock, every_s=0.05))
            for _ in range(200):  # the first pass ran the match when a run is recorded
                if await asyncio.to_thread(SqlMatchRuns(container.engine).latest, 1):
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await task
        finally:
            await container.reader.close()

    asyncio.run(one_pass())
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    shown = CliRunner().invoke(app, ["match", "--status", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    [run] = json.loads(shown.stdout)["runs"]
    assert run["run_date"] == "2026-06-01"
    assert run["at"] == "2026-06-01T02:00:00+08:00"
    assert (run["status"], run["uninsured"], run["unmatched"]) == ("done", 1, 1)
    assert run["counts"]["uninsured_by_region"] == {"320505": 1}
    assert CliRunner().invoke(app, ["match", "--status"], env=env).exit_code == 0
