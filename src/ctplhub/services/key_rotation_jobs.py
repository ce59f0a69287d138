"""A key rotation's share of the verify jobs (DESIGN §5.3, §11): the chunks' sealed rows
and answers name plates and VINs, so they move to the active field key like every other
sealed field, and the old key retires only once none is left under it."""

from __future__ import annotations

from dataclasses import replace

from ctplhub.services.key_ports import Markers, RotatingKeys, SealedRows
from ctplhub.services.verify_jobs import chunk_aad


def reseal_job_blobs(
    rows: SealedRows, ring: RotatingKeys, markers: Markers, batch_size: int = 100
) -> int:
    """Seal every stale chunk blob again; the number written. A blob a runner changed
    meanwhile is not written (the runner's is newer) and is looked at again next batch:
    batches go on until none is stale. A chunk's blob holds up to 100,000 rows, hence
    the small batches."""
    moved = 0
    while stale := rows.stale_job_blobs(batch_size, markers):
        again = []
        for blob in stale:
            aad = chunk_aad(blob.job_id, blob.chunk_no, blob.part)
            again.append(
                replace(blob, blob=ring.encrypt(ring.decrypt(blob.blob, aad=aad), aad=aad))
            )
        moved += rows.reseal_job_blobs(again, [b.blob for b in stale])
    return moved
