"""The verify jobs' sealed blobs a key rotation moves (DESIGN §5.3, §11): each chunk's
uploaded rows (until answered) and its answers (until the job is purged).

Kept apart from ``data_keys.py`` (one table, one idea); ``SqlSealedRows`` inherits it.
A blob is written back only where the stored one is still the blob that was read: a
runner answering the chunk meanwhile (its input cleared, its result written) wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, literal, select, update
from sqlalchemy.types import LargeBinary

from ctplhub.services.key_ports import Markers, SealedJobBlob
from ctplhub.store.tables import verify_job_chunks

_c = verify_job_chunks.c
_PARTS = {"input": _c.input_enc, "result": _c.result_enc}


def _not_under(column: Any, header: bytes) -> Any:
    return func.substr(column, 1, len(header)) != literal(header, LargeBinary)


class SealedJobBlobs:
    _engine: Engine

    def stale_job_blobs(self, limit: int, markers: Markers) -> list[SealedJobBlob]:
        found: list[SealedJobBlob] = []
        with self._engine.connect() as conn:
            for part, column in _PARTS.items():
                query = (
                    select(_c.id, _c.job_id, _c.chunk_no, column)
                    .where(column.is_not(None), _not_under(column, markers.field_header))
                    .order_by(_c.id)
                    .limit(limit)
                )
                found += [
                    SealedJobBlob(r[0], r[1], r[2], part, bytes(r[3])) for r in conn.execute(query)
                ]
        return found[:limit]

    def reseal_job_blobs(self, rows: Sequence[SealedJobBlob], old: Sequence[bytes]) -> int:
        written = 0
        with self._engine.begin() as conn:
            for row, before in zip(rows, old, strict=True):
                column = _PARTS[row.part]
                written += conn.execute(
                    update(verify_job_chunks)
                    .where(_c.id == row.chunk_id, column == before)
                    .values({column.name: row.blob})
                ).rowcount
        return written
