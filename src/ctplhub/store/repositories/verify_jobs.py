"""``SqlVerifyJobs``: verify jobs and their chunks (DESIGN §11; migration 0016).

Claims copy the outbox's (``outbox.py``): one ``UPDATE … WHERE id IN (SELECT … LIMIT 1)
RETURNING``, whose inner select locks ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
runners never take the same chunk, and runs under the single writer lock on SQLite; a
lease (``claimed_until``) hands a dead runner's chunk to the next claim after it ends.
An idle runner's look for work is a plain read first, so it takes no write lock.

Completion starts by updating the job's row: on PostgreSQL that locks it, so the chunks
of one job complete one after another and exactly one of them sees that none is left;
on SQLite it takes the writer lock before anything is read.

A chunk's rows and answers are sealed (``PersonalData``: they name plates and VINs) under
associated data naming the job, the chunk and the part, so a blob moved elsewhere does
not open; the rows are deleted as soon as the chunk is answered, and the whole job
(its answers too) once its retention is over (``purge``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from ctplhub.services.job_uploads import JobRow
from ctplhub.services.ports import PersonalData, Reader
from ctplhub.services.verify_job_ports import ClaimedChunk, JobState, JobStatus, NewJob
from ctplhub.services.verify_jobs import chunk_aad
from ctplhub.store.tables import verify_job_chunks, verify_jobs

_j = verify_jobs.c
_c = verify_job_chunks.c

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class _Lost(Exception):
    """The chunk is no longer this runner's: roll the completion back."""


class SqlVerifyJobs:
    """``VerifyJobStore`` on ``verify_jobs`` and ``verify_job_chunks``."""

    def __init__(self, engine: Engine, personal: PersonalData) -> None:
        self._engine = engine
        self._personal = personal

    def create(self, job: NewJob, chunks: Iterable[Sequence[JobRow]], header: str) -> int:
        r = job.reader
        with self._engine.begin() as conn:
            conn.execute(
                insert(verify_jobs).values(
                    id=job.job_id,
                    owner=r.actor[:64],
                    owner_role=r.role,
                    purpose=r.purpose,
                    request_id=r.request_id[:64] if r.request_id else None,
                    status=QUEUED,
                    total_rows=0,
                    done_rows=0,
                    chunks=0,
                    started_at=job.started_at,
                    updated_at=job.started_at,
                )
            )
            total = count = 0
            for count, rows in enumerate(chunks, start=1):
                sealed = orjson.dumps([(x.plate, x.vin, x.at, x.error) for x in rows]).decode()
                conn.execute(
                    insert(verify_job_chunks).values(
                        job_id=job.job_id,
                        chunk_no=count - 1,
                        first_row=total,
                        rows=len(rows),
                        state=QUEUED,
                        input_enc=self._personal.encrypt(
                            sealed, aad=chunk_aad(job.job_id, count - 1, "input")
                        ),
                        attempts=0,
                    )
                )
                total += len(rows)
            empty = total == 0
            conn.execute(
                update(verify_jobs)
                .where(_j.id == job.job_id)
                .values(
                    total_rows=total,
                    chunks=count,
                    status=DONE if empty else QUEUED,
                    finished_at=job.started_at if empty else None,
                    result_sha256=hashlib.sha256(header.encode()).hexdigest() if empty else None,
                )
            )
        return total

    def state(self, job_id: str) -> JobState | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_j.owner, _j.status, _j.done_rows, _j.total_rows, _j.result_sha256).where(
                    _j.id == job_id
                )
            ).first()
        if row is None:
            return None
        owner, status, done, total, digest = row
        return JobState(job_id, owner, cast(JobStatus, status), done, total, digest)

    def _due(self, at: datetime) -> Any:
        return (
            select(_c.id)
            .where(_c.state == QUEUED, or_(_c.claimed_until.is_(None), _c.claimed_until <= at))
            .order_by(_c.state, _c.id)
            .limit(1)
        )

    def claim(
        self, worker_id: str, at: datetime, lease: timedelta, max_attempts: int
    ) -> ClaimedChunk | None:
        while True:
            with self._engine.connect() as conn:  # nothing to do: no write lock taken
                if conn.execute(self._due(at)).first() is None:
                    return None
            with self._engine.begin() as conn:
                due = self._due(at)
                if conn.dialect.name == "postgresql":
                    due = due.with_for_update(skip_locked=True)
                claimed = conn.execute(
                    update(verify_job_chunks)
                    .where(_c.id == due.scalar_subquery())  # evaluated once: one chunk, never two
                    .values(
                        claimed_by=worker_id[:64],
                        claimed_until=at + lease,
                        attempts=_c.attempts + 1,
                    )
                    .returning(_c.id, _c.job_id, _c.chunk_no, _c.input_enc, _c.attempts)
                ).first()
                if claimed is None:
                    return None  # another runner took it meanwhile
                chunk_id, job_id, chunk_no, sealed, attempts = claimed
                if attempts > max_attempts:  # it failed its runners each time: give up
                    self._fail(conn, job_id, at)
                    continue
                job = conn.execute(
                    select(_j.owner, _j.owner_role, _j.purpose, _j.request_id, _j.started_at).where(
                        _j.id == job_id
                    )
                ).one()
                conn.execute(
                    update(verify_jobs)
                    .where(_j.id == job_id, _j.status == QUEUED)
                    .values(status=RUNNING, updated_at=at)
                )
            rows = orjson.loads(
                self._personal.decrypt(sealed, aad=chunk_aad(job_id, chunk_no, "input"))
            )
            return ClaimedChunk(
                chunk_id,
                job_id,
                chunk_no,
                tuple(JobRow(*row) for row in rows),
                Reader(job.owner, job.owner_role, job.purpose, job.request_id),
                job.started_at,
            )

    def _fail(self, conn: Connection, job_id: str, at: datetime) -> None:
        conn.execute(
            update(verify_jobs)
            .where(_j.id == job_id)
            .values(status=FAILED, updated_at=at, finished_at=at)
        )
        conn.execute(
            update(verify_job_chunks)
            .where(_c.job_id == job_id, _c.state == QUEUED)
            .values(state=FAILED, input_enc=None, claimed_by=None, claimed_until=None)
        )

    def complete(
        self, chunk: ClaimedChunk, worker_id: str, answers: str, header: str, at: datetime
    ) -> bool:
        job_id = chunk.job_id
        try:
            with self._engine.begin() as conn:
                conn.execute(update(verify_jobs).where(_j.id == job_id).values(updated_at=at))
                stored = conn.execute(
                    update(verify_job_chunks)
                    .where(
                        _c.id == chunk.chunk_id,
                        _c.claimed_by == worker_id[:64],
                        _c.state == QUEUED,
                    )
                    .values(
                        state=DONE,
                        input_enc=None,
                        result_enc=self._personal.encrypt(
                            answers, aad=chunk_aad(job_id, chunk.chunk_no, "result")
                        ),
                        claimed_by=None,
                        claimed_until=None,
                    )
                ).rowcount
                if stored != 1:
                    raise _Lost
                conn.execute(
                    update(verify_jobs)
                    .where(_j.id == job_id)
                    .values(done_rows=_j.done_rows + len(chunk.rows))
                )
                left = conn.execute(
                    select(func.count())
                    .select_from(verify_job_chunks)
                    .where(_c.job_id == job_id, _c.state != DONE)
                ).scalar_one()
                if left == 0:
                    digest = hashlib.sha256(header.encode())
                    for text in self._answers(conn, job_id):
                        digest.update(text.encode())
                    conn.execute(
                        update(verify_jobs)
                        .where(_j.id == job_id)
                        .values(status=DONE, finished_at=at, result_sha256=digest.hexdigest())
                    )
        except _Lost:
            return False
        return True

    def release(self, chunk: ClaimedChunk, worker_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(verify_job_chunks)
                .where(_c.id == chunk.chunk_id, _c.claimed_by == worker_id[:64])
                .values(claimed_by=None, claimed_until=None)
            )

    def purge(self, ended_before: datetime) -> int:
        ended = select(_j.id).where(_j.status.in_((DONE, FAILED)), _j.finished_at < ended_before)
        with self._engine.connect() as conn:  # the usual minute: nothing to delete, no write
            ids = list(conn.execute(ended).scalars())
        if not ids:
            return 0
        with self._engine.begin() as conn:  # an ended job changes no more: the ids hold
            for start in range(0, len(ids), 500):  # a few jobs a day; short IN lists
                batch = ids[start : start + 500]
                conn.execute(delete(verify_job_chunks).where(_c.job_id.in_(batch)))
                conn.execute(delete(verify_jobs).where(_j.id.in_(batch)))
        return len(ids)

    def _answers(self, conn: Connection, job_id: str) -> Iterator[str]:
        numbers = conn.execute(
            select(_c.chunk_no).where(_c.job_id == job_id).order_by(_c.chunk_no)
        ).scalars()
        for chunk_no in list(numbers):
            sealed = conn.execute(
                select(_c.result_enc).where(_c.job_id == job_id, _c.chunk_no == chunk_no)
            ).scalar_one()
            yield self._personal.decrypt(sealed, aad=chunk_aad(job_id, chunk_no, "result"))

    def answers(self, job_id: str) -> Iterator[str]:
        with self._engine.connect() as conn:
            count = conn.execute(select(_j.chunks).where(_j.id == job_id)).scalar_one()
        for chunk_no in range(count):  # a connection per chunk: none held while sending
            with self._engine.connect() as conn:
                sealed = conn.execute(
                    select(_c.result_enc).where(_c.job_id == job_id, _c.chunk_no == chunk_no)
                ).scalar_one()
            yield self._personal.decrypt(sealed, aad=chunk_aad(job_id, chunk_no, "result"))
