"""The verify jobs' storage port (DESIGN §11) and the records that cross it.

A job is stored as numbered chunks of rows. ``claim`` hands one unanswered chunk to one
runner for a lease; ``complete`` stores the chunk's answers and adds its rows to the job's
``done_rows`` in one transaction, only while the chunk is still that runner's (a runner
whose lease ran out and whose chunk another runner took stores nothing). So a job
survives a runner's death between chunks or inside one: at most one chunk's work is
repeated, and no row is answered twice in the result nor lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from ctplhub.services.job_uploads import JobRow
from ctplhub.services.ports import Reader

JobStatus = Literal["queued", "running", "done", "failed"]


@dataclass(frozen=True, slots=True)
class NewJob:
    job_id: str
    reader: Reader  # the owner (``actor``), its role, the purpose and the upload's request id
    started_at: datetime  # the instant of rows with an empty ``at``


@dataclass(frozen=True, slots=True)
class JobState:
    job_id: str
    owner: str
    status: JobStatus
    done_rows: int
    total_rows: int
    result_sha256: str | None  # set when ``done``: of the result CSV's bytes


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    chunk_id: int
    job_id: str
    chunk_no: int
    rows: tuple[JobRow, ...]
    reader: Reader
    started_at: datetime


class VerifyJobStore(Protocol):
    def create(self, job: NewJob, chunks: Iterable[Sequence[JobRow]], header: str) -> int:
        """Store the job and all its chunks in one transaction (nothing half-stored when
        ``chunks`` raises); returns the number of rows. A job of no rows is done at once,
        its result being ``header`` alone."""
        ...

    def state(self, job_id: str) -> JobState | None: ...

    def claim(
        self, worker_id: str, at: datetime, lease: timedelta, max_attempts: int
    ) -> ClaimedChunk | None:
        """The oldest unanswered chunk no live lease holds, now leased to ``worker_id``;
        a chunk claimed ``max_attempts`` times already fails its job instead."""
        ...

    def complete(
        self, chunk: ClaimedChunk, worker_id: str, answers: str, header: str, at: datetime
    ) -> bool:
        """Store ``answers`` (CSV lines) and the progress; False, storing nothing, when the
        chunk is no longer ``worker_id``'s. The last chunk makes the job ``done`` with the
        SHA-256 of ``header`` followed by every chunk's answers in order."""
        ...

    def release(self, chunk: ClaimedChunk, worker_id: str) -> None:
        """Hand a chunk back at once (its runner could not answer it)."""
        ...

    def purge(self, ended_before: datetime) -> int:
        """Delete every done or failed job that ended before ``ended_before``, with its
        chunks, in one transaction; returns the number of jobs deleted."""
        ...

    def answers(self, job_id: str) -> Iterator[str]:
        """A done job's answers, chunk by chunk in order (one chunk in memory at a time)."""
        ...
