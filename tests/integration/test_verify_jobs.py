"""Verify jobs end to end (DESIGN §11; issue 12 item 3), on both engines: CSV and XLSX
uploads through the HTTP API, answered by a runner driven here (a second container, as a
``ctplhub worker`` process would be) and once by the app's own background runner; a bad
row; a runner that dies mid-job and another that finishes it; the signed result; who may
read a job; files that cannot be read."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.config import Settings
from ctplhub.security.answer_signing import canonical_json, public_keys_of
from ctplhub.services.verify_jobs import RESULT_HEADER
from ctplhub.store.tables import verify_job_chunks, verify_jobs
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event, run_reads

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
START = "2026-11-25T10:00:00+08:00"
UNTIL = "2027-03-01T00:00:00+08:00"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROWS = [
    ("苏E12345", "", ""),
    ("", VIN, "2026-06-01T00:00:00+08:00"),
    ("not a plate", "", ""),
    ("苏E99999", "", ""),
    ("苏E12345", "", "2025-01-01T00:00:00+08:00"),
    ("苏E12345", "", "yesterday"),
]
EXPECTED = [
    ["苏E12345", "", START, "true", "ACTIVE", "PICC", UNTIL, ""],
    ["", VIN, "2026-06-01T00:00:00+08:00", "true", "ACTIVE", "PICC", UNTIL, ""],
    ["not a plate", "", START, "", "", "", "", "invalid_plate"],
    ["苏E99999", "", START, "false", "NO_RECORD", "", "", ""],
    ["苏E12345", "", "2025-01-01T00:00:00+08:00", "false", "PENDING_START", "", "", ""],
    ["苏E12345", "", "yesterday", "", "", "", "", "invalid_instant"],
]


@pytest.fixture
def settings(database_url: str, home: Path) -> Settings:
    """Chunks of two rows, so six rows make three; the app's background runner is off
    (the tests drive runners themselves) except where a test turns it on."""
    return Settings(
        database_url=database_url,
        home=home,
        redis_url=None,
        insurer_cache_s=0,
        serve_runs_jobs=False,
        verify_job_chunk_rows=2,
        verify_job_lease_s=60,
        max_verify_job_rows=50,
    )


@pytest.fixture(autouse=True)
def covered(clock: Clock, picc: InsurerAccount) -> None:
    clock.now = NOW
    picc.api.report_event(
        event(
            policy_no="PDAA2026320500000001",
            coverage_start="2026-03-01T00:00:00+08:00",
            coverage_end="2027-03-01T00:00:00+08:00",
            occurred_at="2026-02-20T10:00:00+08:00",
        )
    )


@pytest.fixture
def worker(settings: Settings, clock: Clock) -> Iterator[Container]:
    """Another process's container on the same database: a ``ctplhub worker``."""
    built = build_container(settings, clock=clock)
    yield built
    built.close()


def csv_body(rows: list[tuple[str, str, str]] = ROWS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("plate", "vin", "at"))
    writer.writerows(rows)
    return out.getvalue().encode()


def submit(client: TestClient, token: str, body: bytes, media: str = "text/csv") -> str:
    headers = {**bearer_headers(token), "Content-Type": media, "X-CTPL-Purpose": "inspection"}
    answer = client.post("/v1/verify-jobs", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def progress(client: TestClient, token: str, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/verify-jobs/{job_id}", headers=bearer_headers(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def run_chunks(worker: Container, limit: int = 1_000, runner: str = "runner-b") -> int:
    """Answer chunks as a runner does, until none waits (or ``limit``); how many."""
    jobs = worker.verify_jobs
    assert jobs is not None

    async def go() -> int:
        done = 0
        while done < limit and await jobs.run_once(runner):
            done += 1
        return done

    return run_reads(worker, go)


def result_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))[1:]


def check_signature(client: TestClient, answer: Any, job_id: str, rows: int) -> None:
    token = answer.headers["X-CTPL-Result-Signature"]
    body_part, signature_part = token.split(".")
    message = base64.urlsafe_b64decode(body_part + "=" * (-len(body_part) % 4))
    signature = base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4))
    signed = orjson.loads(message)
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    assert set(signed) == {"job_id", "kid", "rows", "sha256"}
    assert signed["job_id"] == job_id and signed["rows"] == rows
    assert signed["sha256"] == hashlib.sha256(answer.content).hexdigest()
    assert message == canonical_json(signed)
    public_keys_of(jwks)[signed["kid"]].verify(signature, message)  # raises when forged


def test_a_csv_job_runs_chunk_by_chunk_and_its_result_is_signed(
    client: TestClient, worker: Container, police_token: str
) -> None:
    job_id = submit(client, police_token, csv_body())
    assert progress(client, police_token, job_id) == {
        "status": "queued",
        "done_rows": 0,
        "total_rows": 6,
    }
    early = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police_token))
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "conflict"

    assert run_chunks(worker, limit=1) == 1
    assert progress(client, police_token, job_id) == {
        "status": "running",
        "done_rows": 2,
        "total_rows": 6,
    }
    assert run_chunks(worker) == 2
    assert progress(client, police_token, job_id)["status"] == "done"

    answer = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police_token))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.text.startswith(RESULT_HEADER)
    assert result_rows(answer.text) == EXPECTED
    check_signature(client, answer, job_id, rows=6)

    # The vehicle's reads are in its access log, under the police role and the purpose.
    worker.access_log.flush_now()
    entries = client.post(
        "/v1/coverage/access-log", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
    ).json()["entries"]
    assert {"actor_role": "police", "purpose": "inspection"} in [
        {"actor_role": e["actor_role"], "purpose": e["purpose"]} for e in entries
    ]
    # Answered chunks keep no input.
    with worker.engine.connect() as conn:
        kept = conn.execute(
            select(func.count())
            .select_from(verify_job_chunks)
            .where(verify_job_chunks.c.input_enc.is_not(None))
        ).scalar_one()
    assert kept == 0


def test_an_xlsx_job_reads_the_first_sheet_streaming(
    client: TestClient, worker: Container, police_token: str
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["VIN", "at", "plate"])  # any column order; a header in any case
    sheet.append([VIN, datetime(2026, 6, 1, 0, 0), None])  # a date cell: Beijing time
    sheet.append([None, None, "苏E12345"])
    sheet.append([None, None, None])  # blank: not a row
    sheet.append([None, "2026-06-01T00:00:00+08:00", "粤B0000"])
    raw = io.BytesIO()
    book.save(raw)

    job_id = submit(client, police_token, raw.getvalue(), XLSX)
    run_chunks(worker)
    answer = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police_token))
    assert result_rows(answer.text) == [
        ["", VIN, "2026-06-01T00:00:00+08:00", "true", "ACTIVE", "PICC", UNTIL, ""],
        ["苏E12345", "", START, "true", "ACTIVE", "PICC", UNTIL, ""],
        ["粤B0000", "", "2026-06-01T00:00:00+08:00", "", "", "", "", "invalid_plate"],
    ]
    check_signature(client, answer, job_id, rows=3)


def test_a_job_survives_a_runner_that_dies_mid_job(
    client: TestClient, worker: Container, police_token: str, settings: Settings, clock: Clock
) -> None:
    job_id = submit(client, police_token, csv_body())
    a = build_container(settings, clock=clock)  # runner A: another process
    try:
        assert run_chunks(a, limit=1, runner="runner-a") == 1  # chunk 0, committed
        store = a.verify_jobs._store  # type: ignore[union-attr]
        held = store.claim("runner-a", clock(), a.verify_jobs._lease, 5)  # type: ignore[union-attr]
        assert held is not None and held.chunk_no == 1  # ... and then runner A stalls

        assert run_chunks(worker) == 1  # chunk 2; chunk 1 is still under A's lease
        assert progress(client, police_token, job_id) == {
            "status": "running",
            "done_rows": 4,
            "total_rows": 6,
        }
        clock.advance(seconds=61)  # A's lease ends: its chunk goes to the next claim
        assert run_chunks(worker) == 1
        assert progress(client, police_token, job_id)["status"] == "done"

        # Runner A comes back with its old claim: nothing of it is stored.
        late = store.complete(held, "runner-a", "forged,,,,,,,\r\n", RESULT_HEADER, clock())
        assert late is False
    finally:
        a.close()
    answer = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police_token))
    assert result_rows(answer.text) == EXPECTED  # every row once, in order
    check_signature(client, answer, job_id, rows=6)


def test_a_chunk_that_keeps_failing_fails_its_job(
    client: TestClient, worker: Container, police_token: str, clock: Clock
) -> None:
    job_id = submit(client, police_token, csv_body(ROWS[:2]))
    store = worker.verify_jobs._store  # type: ignore[union-attr]
    for _ in range(5):  # claimed and never completed, five times
        assert store.claim("crashing", clock(), worker.verify_jobs._lease, 5) is not None  # type: ignore[union-attr]
        clock.advance(seconds=61)
    assert store.claim("crashing", clock(), worker.verify_jobs._lease, 5) is None  # type: ignore[union-attr]
    assert progress(client, police_token, job_id)["status"] == "failed"
    answer = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police_token))
    assert answer.status_code == 409


def test_the_app_runs_jobs_in_its_background(
    settings: Settings, clock: Clock, police_token: str
) -> None:
    serving = build_container(settings.model_copy(update={"serve_runs_jobs": True}), clock=clock)
    try:
        with TestClient(build_app(serving)) as client:
            job_id = submit(client, police_token, csv_body())
            deadline = time.monotonic() + 20
            while progress(client, police_token, job_id)["status"] != "done":
                assert time.monotonic() < deadline, "the background runner did not finish"
                time.sleep(0.05)
            answer = client.get(
                f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police_token)
            )
            assert result_rows(answer.text) == EXPECTED
    finally:
        serving.close()


def test_only_the_owner_and_admins_read_a_job(
    client: TestClient, container: Container, worker: Container, police_token: str
) -> None:
    job_id = submit(client, police_token, csv_body(ROWS[:1]))
    run_chunks(worker)
    other = container.users.add("officer-002", "police")
    admin = container.users.add("admin-001", "admin")
    agent = container.users.add("agent-001", "agent")
    for path in (f"/v1/verify-jobs/{job_id}", f"/v1/verify-jobs/{job_id}/result"):
        assert client.get(path, headers=bearer_headers(other)).status_code == 404
        assert client.get(path, headers=bearer_headers(admin)).status_code == 200
        refused = client.get(path, headers=bearer_headers(agent))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "role_not_allowed"
        assert client.get(path).status_code == 401
    unknown = client.get("/v1/verify-jobs/0123abcd", headers=bearer_headers(police_token))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    posted = client.post(
        "/v1/verify-jobs",
        content=csv_body(),
        headers={**bearer_headers(admin), "Content-Type": "text/csv"},
    )
    assert posted.status_code == 403  # admins read jobs; police and regulators post them


@pytest.mark.parametrize(
    ("body", "media", "status", "code"),
    [
        (b"plate,vin,at\n\xff\xfe,,\n", "text/csv", 400, "malformed_csv"),
        (b"name,phone\nx,y\n", "text/csv", 400, "malformed_csv"),
        (b"", "text/csv", 400, "malformed_csv"),
        (b"PK\x03\x04 not really a workbook", XLSX, 400, "malformed_xlsx"),
        (b"plate,vin,at\n", "application/json", 415, "unsupported_media_type"),
        (csv_body([("苏E12345", "", "")] * 51), "text/csv", 413, "payload_too_large"),
        (csv_body([("苏E12345", "", "")]), "text/csv", 400, "validation_failed"),
    ],
    ids=["not-utf8", "no-plate-column", "empty", "not-xlsx", "json", "too-many-rows", "purpose"],
)
def test_a_file_that_cannot_be_read_is_refused_and_nothing_is_stored(
    client: TestClient,
    container: Container,
    police_token: str,
    body: bytes,
    media: str,
    status: int,
    code: str,
) -> None:
    headers = {**bearer_headers(police_token), "Content-Type": media}
    if code == "validation_failed":
        headers["X-CTPL-Purpose"] = "Not A Code"
    answer = client.post("/v1/verify-jobs", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    with container.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(verify_jobs)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(verify_job_chunks)).scalar_one() == 0


def test_only_a_server_runs_jobs_in_its_background(settings: Settings, clock: Clock) -> None:
    """The cameras' consumer opens the container's resources without the job runner (it
    once ran jobs too, and a stray consumer took other processes' chunks); a second start
    on one loop starts nothing more."""
    built = build_container(settings.model_copy(update={"serve_runs_jobs": True}), clock=clock)
    runner = built.job_runner
    assert runner is not None

    async def go() -> tuple[int, int]:
        await built.open_resources(run_jobs=False)
        idle = len(runner._running)
        await built.close_resources()
        await built.open_resources()
        runner.start()
        serving = len(runner._running)
        await built.close_resources()
        return idle, serving + len(runner._running)

    try:
        assert asyncio.run(go()) == (0, 1)
    finally:
        built.close()
