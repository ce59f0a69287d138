"""Use case: give a leaf to every event stored before the ledger existed (DESIGN §6).

A registry upgraded past migration 0006 holds events without leaves; ``ctplhub init``
appends them right after migrating, in the order of their ids, a batch per transaction
under the same append lock and with the same signed tree head as live ingest, so it may
run while servers ingest. Each batch commits, so an interrupted backfill resumes where it
stopped when run again (the work left is always "events no leaf names"), and two that run
at once never log an event twice (``ledger_leaves.event_id`` is unique: the loser reads
again).
"""

from __future__ import annotations

from collections.abc import Callable

from ctplhub.services.ledger_append import LedgerWriter
from ctplhub.services.ledger_ports import LedgerBackfillSource
from ctplhub.services.ledger_recompute import stored_canonical
from ctplhub.services.ports import Clock, PersonalData, RetryableConflict, UnitOfWorkFactory

BATCH_SIZE = 2_000
_RETRIES = 3


class LedgerBackfill:
    def __init__(
        self,
        source: LedgerBackfillSource,
        uow: UnitOfWorkFactory,
        writer: LedgerWriter,
        personal: PersonalData,
        clock: Clock,
    ) -> None:
        self._source = source
        self._uow = uow
        self._writer = writer
        self._personal = personal
        self._clock = clock

    def missing(self) -> int:
        """How many events have no leaf yet."""
        return self._source.missing_count()

    def run(
        self, *, batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None
    ) -> int:
        """Append every event without a leaf; returns how many were appended."""
        if self._source.missing_count() == 0:  # the usual `ctplhub init`: one count
            return 0
        after, appended, conflicts = 0, 0, 0
        while batch := self._source.events_without_leaf_after(after, batch_size):
            built = self._writer.entries.build_many(
                [stored_canonical(self._personal, event.fields) for event in batch]
            )
            try:
                with self._uow() as uow:
                    ids = [event.event_id for event in batch]
                    self._writer.append(uow.ledger, built, ids, self._clock())
                    uow.commit()
            except RetryableConflict:  # another backfill logged some of them first
                conflicts += 1
                if conflicts >= _RETRIES:
                    raise
                continue
            conflicts = 0
            after = batch[-1].event_id
            appended += len(batch)
            if progress is not None:
                progress(len(batch))
        return appended
