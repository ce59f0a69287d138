"""Use case: verify jobs, bulk verify for files of up to a million rows (DESIGN §11).

``submit`` stores the upload as chunks (``VerifyJobStore.create``) and answers at once;
runners (``services/verify_job_runner.py``: ``ctplhub serve`` in the background, ``ctplhub
worker`` alongside) answer one chunk at a time through ``VerifyBulk``, the read path of
``POST /v1/coverage/verify``, so a job's row answers exactly as the same item would
there. Live confirmation (§10) is not asked for jobs: it is an interactive, time-boxed
call to insurers, and a million-row file would turn it into a flood (the ``VerifyBulk``
given here has none). A chunk's rows are answered a thousand at a time, and each
thousand's vehicles are access-logged under the job's owner and purpose, as a bulk
verify's are.

A row with an empty ``at`` is answered at the job's start (the upload's instant), so a
job's answers do not drift while it runs. The result CSV (§11 columns) echoes each row's
``plate`` and ``vin`` as uploaded, so a result row lines up with its input row even when
a value could not be read; ``at`` is the instant answered (as uploaded when unreadable).

A finished job (done or failed) is deleted, rows, results and all, ``retention`` after it
ended (``purge``, run by ``ctplhub worker`` and ``ctplhub verify-jobs purge``): its plates
and VINs are kept no longer than its owner needs to fetch the result.
"""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.errors import Conflict, NotFound, PayloadTooLarge
from ctplhub.domain.instants import format_instant, format_optional
from ctplhub.services.job_uploads import JobRow
from ctplhub.services.ports import Clock, Reader
from ctplhub.services.verify_bulk import RejectedItem, VerifyBulk, VerifyResult
from ctplhub.services.verify_job_ports import ClaimedChunk, JobState, NewJob, VerifyJobStore

RESULT_COLUMNS = (
    "plate",
    "vin",
    "at",
    "covered",
    "status",
    "insurer_code",
    "covered_until",
    "error",
)
RESULT_HEADER = ",".join(RESULT_COLUMNS) + "\r\n"  # csv.writer's line end, like every row
ADMIN = "admin"
VERIFY_BATCH = 1_000  # rows of a chunk answered per ``VerifyBulk.verify`` call


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    job_id: str
    total_rows: int


@dataclass(frozen=True, slots=True)
class JobResult:
    """A done job's result: ``parts`` yields the CSV's bytes (header first), one chunk at
    a time; ``sha256`` is of all of them together, ``rows`` the data rows."""

    job_id: str
    rows: int
    sha256: str
    parts: Iterator[bytes]


class VerifyJobs:
    def __init__(
        self,
        store: VerifyJobStore,
        verify: VerifyBulk,
        clock: Clock,
        *,
        chunk_rows: int = 10_000,
        max_rows: int = 1_000_000,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 5,
        new_id: Callable[[], str] = lambda: secrets.token_hex(16),
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self._store = store
        self._verify = verify
        self._clock = clock
        self._chunk_rows = chunk_rows
        self.max_rows = max_rows
        self._lease = lease
        self._max_attempts = max_attempts
        self._new_id = new_id
        self.retention = retention

    def submit(self, reader: Reader, rows: Iterable[JobRow]) -> SubmittedJob:
        """Store the rows as a queued job owned by ``reader.actor``; more than
        ``max_rows`` rows is ``413 payload_too_large`` and nothing is stored."""
        job = NewJob(self._new_id(), reader, self._clock())
        total = self._store.create(job, self._chunks(rows), RESULT_HEADER)
        return SubmittedJob(job.job_id, total)

    def _chunks(self, rows: Iterable[JobRow]) -> Iterator[list[JobRow]]:
        chunk: list[JobRow] = []
        for count, row in enumerate(rows, start=1):
            if count > self.max_rows:
                raise PayloadTooLarge(f"a verify job holds at most {self.max_rows:,} rows")
            chunk.append(row)
            if len(chunk) == self._chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def progress(self, job_id: str, reader: Reader) -> JobState:
        """The job's state, for its owner or an admin; anyone else gets ``404 not_found``,
        as for a job that does not exist (a job's existence is not shown)."""
        state = self._store.state(job_id) if _well_formed(job_id) else None
        if state is None or (state.owner != reader.actor and reader.role != ADMIN):
            raise NotFound("no such verify job")
        return state

    def result(self, job_id: str, reader: Reader) -> JobResult:
        """The result CSV; ``409 conflict`` until the job is done."""
        state = self.progress(job_id, reader)
        if state.status != "done" or state.result_sha256 is None:
            raise Conflict(
                f"the job is {state.status}; its result is ready once it is done",
                details={"status": state.status, "done_rows": state.done_rows},
            )
        return JobResult(job_id, state.total_rows, state.result_sha256, self._parts(job_id))

    def _parts(self, job_id: str) -> Iterator[bytes]:
        yield RESULT_HEADER.encode()
        for text in self._store.answers(job_id):
            yield text.encode()

    def purge(self, now: datetime) -> int:
        """Delete the jobs that ended more than ``retention`` before ``now``; their number."""
        return self._store.purge(now - self.retention)

    async def run_once(self, worker_id: str) -> bool:
        """Answer one chunk of any job; False when none was waiting. The chunk's answers
        and the job's progress are committed together; a failure hands the chunk back."""
        chunk = await asyncio.to_thread(
            self._store.claim, worker_id, self._clock(), self._lease, self._max_attempts
        )
        if chunk is None:
            return False
        try:
            answers = await self.answer(chunk)
        except BaseException:
            await asyncio.to_thread(self._store.release, chunk, worker_id)
            raise
        await asyncio.to_thread(
            self._store.complete, chunk, worker_id, answers, RESULT_HEADER, self._clock()
        )
        return True

    async def answer(self, chunk: ClaimedChunk) -> str:
        """The chunk's result rows as CSV text, in its rows' order."""
        start = format_instant(chunk.started_at)
        items = [
            {"plate": row.plate or None, "vin": row.vin or None, "at": row.at or start}
            for row in chunk.rows
            if row.error is None
        ]
        # A thousand rows a call: ``verify`` parses its items in one go on the event loop,
        # which in ``ctplhub serve`` answers queries too (10,000 parses held it ~0.1 s).
        results: list[VerifyResult] = []
        for first in range(0, len(items), VERIFY_BATCH):
            part = items[first : first + VERIFY_BATCH]
            results += await self._verify.verify(part, reader=chunk.reader)
        # Off the event loop: in ``ctplhub serve`` it is the one that answers queries.
        return await asyncio.to_thread(answer_rows, chunk.rows, results, start)


def answer_rows(rows: Sequence[JobRow], results: Iterable[VerifyResult], start: str) -> str:
    """One CSV line per row: a row read with an error gets it; the others take their
    ``VerifyBulk`` results in order."""
    out = io.StringIO()
    write = csv.writer(out).writerow
    answered = iter(results)
    for row in rows:
        error = row.error
        result = next(answered) if error is None else None
        if isinstance(result, RejectedItem):
            error = result.error.code
        if result is None or isinstance(result, RejectedItem):
            write((row.plate, row.vin, row.at or start, "", "", "", "", error))
            continue
        write(
            (
                row.plate,
                row.vin,
                format_instant(result.at),
                "true" if result.covered else "false",
                result.status.value,
                result.insurer_code or "",
                format_optional(result.covered_until) or "",
                "",
            )
        )
    return out.getvalue()


def chunk_aad(job_id: str, chunk_no: int, part: str) -> bytes:
    """What a chunk's sealed ``input`` or ``result`` is bound to: a blob moved to another
    job, chunk or part does not open."""
    return f"verify_job_chunks:{job_id}:{chunk_no}:{part}".encode()


def _well_formed(job_id: str) -> bool:
    return 0 < len(job_id) <= 32 and job_id.isascii() and job_id.isalnum()
