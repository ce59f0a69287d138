"""Worker processes for ``ctplhub ledger audit``: the leaves' recomputation (about four
AES-GCM openings and seven SHA-256s per leaf, ``services.ledger_recompute``) runs on
every core, range by range, each worker with its own connection and keyring, as
``ctplhub import``'s workers do. Results come back in range order, a few ranges ahead at
most, so memory stays bounded however long the log."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from ctplhub.bootstrap import build_keyring
from ctplhub.config import Settings
from ctplhub.security.answer_signing import plain_canonical_json
from ctplhub.security.keystore import load_keys
from ctplhub.services.ledger_recompute import LeafRecomputer, RecomputedRange, RecomputeRanges
from ctplhub.store.ledger_audit import SqlLedgerAuditSource
from ctplhub.store.schema import make_engine

_WORKER: tuple[LeafRecomputer, SqlLedgerAuditSource] | None = None


def _start(settings: Settings) -> None:
    global _WORKER
    engine = make_engine(settings.database_url)
    keyring = build_keyring(load_keys(settings.home), engine, settings.home)
    _WORKER = (LeafRecomputer(keyring, plain_canonical_json), SqlLedgerAuditSource(engine))


def _recompute(bounds: tuple[int, int]) -> RecomputedRange:
    assert _WORKER is not None, "the worker was not started"
    recomputer, source = _WORKER
    return recomputer.recompute(source.leaves(*bounds))


@contextmanager
def audit_workers(settings: Settings, workers: int) -> Iterator[RecomputeRanges]:
    """A ``RecomputeRanges`` over ``workers`` processes, stopped when the block ends."""
    context = multiprocessing.get_context("spawn")  # no inherited connections or locks
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=(settings,)
    ) as pool:

        def recompute(ranges: Sequence[tuple[int, int]]) -> Iterator[RecomputedRange]:
            waiting = iter(ranges)
            pending: deque[Future[RecomputedRange]] = deque()
            for bounds in waiting:
                pending.append(pool.submit(_recompute, bounds))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                result = pending.popleft().result()
                following = next(waiting, None)
                if following is not None:
                    pending.append(pool.submit(_recompute, following))
                yield result

        yield recompute
