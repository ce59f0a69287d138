"""Verify jobs' plates and VINs at rest (DESIGN §5.3, §11), on both engines: a key
rotation seals every chunk's rows and answers again (a job half-answered goes on after
it, and the answers read the same), and finished jobs are deleted, rows and results,
once their retention is over (``VerifyJobs.purge``, ``ctplhub verify-jobs purge``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container, KeyTools, build_container
from ctplhub.cli.main import app
from ctplhub.config import Settings
from ctplhub.security.pii import FieldCipher
from ctplhub.services.job_uploads import JobRow
from ctplhub.services.ports import Reader
from ctplhub.services.verify_job_ports import ClaimedChunk
from ctplhub.services.verify_jobs import VERIFY_BATCH
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import verify_job_chunks, verify_jobs
from helpers import Clock, InsurerAccount, bearer_headers, event, run_reads

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
ROWS = [("苏E12345", "", ""), ("苏E99999", "", ""), ("", "LSVAU218XN2183294", "")]


@pytest.fixture
def settings(database_url: str, home: Path) -> Settings:
    """Chunks of one row; the app's own runner off (the tests drive a worker's)."""
    return Settings(
        database_url=database_url,
        home=home,
        redis_url=None,
        insurer_cache_s=0,
        serve_runs_jobs=False,
        verify_job_chunk_rows=1,
        verify_job_lease_s=60,
        verify_job_retention_days=30,
    )


@pytest.fixture(autouse=True)
def covered(clock: Clock, picc: InsurerAccount) -> None:
    clock.now = NOW
    picc.api.report_event(
        event(coverage_start="2026-03-01T00:00:00+08:00", coverage_end="2027-03-01T00:00:00+08:00")
    )


@pytest.fixture
def worker(settings: Settings, clock: Clock) -> Iterator[Container]:
    built = build_container(settings, clock=clock)
    yield built
    built.close()


def submit(client: TestClient, token: str) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([("plate", "vin", "at"), *ROWS])
    answer = client.post(
        "/v1/verify-jobs",
        content=out.getvalue().encode(),
        headers={**bearer_headers(token), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def run_chunks(worker: Container, limit: int = 100) -> int:
    jobs = worker.verify_jobs
    assert jobs is not None

    async def go() -> int:
        done = 0
        while done < limit and await jobs.run_once("runner"):
            done += 1
        return done

    return run_reads(worker, go)


def result(client: TestClient, token: str, job_id: str) -> tuple[int, str]:
    answer = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(token))
    return answer.status_code, answer.text


def blob_kids(engine: Engine) -> set[str]:
    c = verify_job_chunks.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.input_enc, c.result_enc)).all()
    return {FieldCipher.key_id_of(bytes(b)) for row in rows for b in row if b is not None}


@pytest.fixture
def tools(settings: Settings, clock: Clock) -> Iterator[Callable[[], KeyTools]]:
    engines: list[Engine] = []

    def make() -> KeyTools:
        engines.append(make_engine(settings.database_url))
        return KeyTools(engines[-1], settings.home, clock)

    yield make
    for engine in engines:
        engine.dispose()


def test_a_rotation_reseals_job_rows_and_answers(
    client: TestClient,
    worker: Container,
    police_token: str,
    tools: Callable[[], KeyTools],
) -> None:
    done_job = submit(client, police_token)
    assert run_chunks(worker) == 3
    before = result(client, police_token, done_job)
    assert before[0] == 200
    half_job = submit(client, police_token)
    assert run_chunks(worker, limit=1) == 1  # one answer sealed, two rows still waiting
    old_kids = blob_kids(worker.engine)

    for _ in range(2):  # the second rotation retires the first one's keys
        rotation = tools().rotation
        report = rotation.run(rotation.begin(), settle_s=0)
        assert report.complete and report.job_blobs_resealed == 6  # 4 answers, 2 inputs
        assert report.as_json()["verify_job_blobs_resealed"] == 6
        assert blob_kids(worker.engine) == {report.field_kid}
    assert report.retired and not old_kids & blob_kids(worker.engine)

    # A process that starts afresh reads the resealed rows and answers.
    fresh = build_container(worker.settings, clock=lambda: NOW)
    try:
        assert run_chunks(fresh) == 2
    finally:
        fresh.close()
    assert result(client, police_token, done_job) == before
    status, text = result(client, police_token, half_job)
    assert status == 200 and text == before[1]


def test_finished_jobs_are_purged_after_their_retention(
    client: TestClient,
    worker: Container,
    clock: Clock,
    police_token: str,
    database_url: str,
    home: Path,
) -> None:
    finished = submit(client, police_token)
    assert run_chunks(worker) == 3
    clock.advance(days=10)
    waiting = submit(client, police_token)  # queued: never purged, however old
    jobs = worker.verify_jobs
    assert jobs is not None

    assert jobs.purge(NOW + timedelta(days=30)) == 0  # ended exactly 30 days ago: kept
    assert result(client, police_token, finished)[0] == 200
    assert jobs.purge(NOW + timedelta(days=30, seconds=1)) == 1
    assert result(client, police_token, finished)[0] == 404
    with worker.engine.connect() as conn:
        left_jobs = conn.execute(select(verify_jobs.c.id)).scalars().all()
        left_chunks = conn.execute(select(func.count()).select_from(verify_job_chunks)).scalar_one()
    assert left_jobs == [waiting] and left_chunks == 3

    assert run_chunks(worker) == 3  # it ends now, ten days after the first
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}
    later = (NOW + timedelta(days=41)).isoformat()
    purged = CliRunner().invoke(app, ["verify-jobs", "purge", "--at", later, "--json"], env=env)
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout) == {
        "at": "2027-01-05T10:00:00+08:00",
        "retention_days": 30,
        "purged": 1,
    }
    with worker.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(verify_job_chunks)).scalar_one() == 0


def test_a_big_chunk_is_answered_a_thousand_rows_a_call_in_its_rows_order(
    container: Container,
) -> None:
    """``VerifyJobs.answer`` splits a chunk into ``VERIFY_BATCH`` rows per bulk-verify call
    (the server's event loop gets turns between them); the answers stay in row order."""
    rows = tuple(
        JobRow("苏E12345", "", "")
        if n % 3 == 0
        else JobRow("苏E99999", "", "")
        if n % 3 == 1
        else JobRow("bad", "", "", "invalid_plate")
        for n in range(2 * VERIFY_BATCH + 500)
    )
    chunk = ClaimedChunk(1, "job", 0, rows, Reader("officer-1", "police", "inspection"), NOW)
    jobs = container.verify_jobs
    assert jobs is not None
    text = run_reads(container, lambda: jobs.answer(chunk))
    answered = list(csv.reader(io.StringIO(text, newline="")))
    expected = {
        0: ("苏E12345", "ACTIVE", ""),
        1: ("苏E99999", "NO_RECORD", ""),
        2: ("bad", "", "invalid_plate"),
    }
    assert [(a[0], a[4], a[7]) for a in answered] == [expected[n % 3] for n in range(len(rows))]
