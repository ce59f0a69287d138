"""Use cases of the roadside cameras (DESIGN §12): decide a micro-batch of plate reads,
list the alerts kept for police, and the alerts' housekeeping.

A batch is checked through the bulk verify read path (``VerifyBulk.check_plates``): one
read of every plate in it, the §2.5 rules at each read's ``seen_at``. Reads of covered
vehicles end there: counted by the caller, nothing of them stored or logged. The others
become candidate alerts, and the store keeps, in one transaction, the ids of those reads
and the alerts the 24-hour rule lets through (``domain/anpr.one_per_day``); a read id
kept already means a repeat, which changes nothing. Each alert raised goes to the access
log (role ``police``, purpose ``anpr``); publishing it is the caller's, after the commit
(the ``published_at`` outbox of ``AlertStore``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ctplhub.domain.anpr import ALERT_STATUSES, KEEP_ALERTS, Alert, PlateRead, one_per_day
from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.instants import parse_instant
from ctplhub.services.ports import AccessLog, Clock, Reader
from ctplhub.services.verify_bulk import VerifyBulk

ANPR_READER = Reader("anpr", "police", "anpr")
MAX_LISTED = 10_000
_PREFIX = re.compile(r"[0-9]{0,6}")

Rule = Callable[[Sequence[tuple[str, str, datetime]], Sequence[Alert]], list[Alert]]


class AlertStore(Protocol):
    """Alerts and the ids of the reads that raised or could have raised one (``store``).
    Each method is one transaction, called on a worker thread."""

    def raise_alerts(self, candidates: Sequence[Alert], rule: Rule, now: datetime) -> list[Alert]:
        """Remember the candidates' read ids; of those not seen before, keep the alerts
        ``rule`` lets through (given the kept alerts of the same plates and regions) and
        return them. Race-free across processes."""
        ...

    def unpublished(self, created_before: datetime, limit: int) -> list[Alert]: ...
    def mark_published(self, alert_ids: Sequence[str], at: datetime) -> None: ...
    def purge(self, seen_before: datetime) -> int: ...
    def listed(self, region_prefix: str, since: datetime, limit: int) -> list[Alert]: ...


@dataclass(frozen=True, slots=True)
class Decided:
    """What a batch of reads came to: the alerts raised (to publish), and counts."""

    alerts: list[Alert]
    covered: int
    uncovered: int


class AnprAlerts:
    def __init__(
        self,
        verify: VerifyBulk,
        store: AlertStore,
        access_log: AccessLog,
        clock: Clock,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        keep: timedelta = KEEP_ALERTS,
    ) -> None:
        self._verify = verify
        self._store = store
        self._log = access_log
        self._clock = clock
        self._new_id = new_id
        self.keep = keep

    async def decide(self, reads: Sequence[PlateRead]) -> Decided:
        """Check every read at its ``seen_at`` and keep the alerts due. Raises what the
        database raises when it does not answer: the caller retries the same batch."""
        checks = await self._verify.check_plates([(r.plate, r.seen_at) for r in reads])
        candidates: list[Alert] = []
        vins: dict[str, str | None] = {}
        for read, check in zip(reads, checks, strict=True):
            if check.status not in ALERT_STATUSES:
                continue
            alert_id = self._new_id()
            vins[alert_id] = check.vin
            candidates.append(
                Alert(
                    alert_id,
                    read.read_id,
                    read.camera_id,
                    read.region_code,
                    read.plate,
                    read.seen_at,
                    check.status,
                    check.lapsed_since,
                )
            )
        raised: list[Alert] = []
        if candidates:
            raised = await asyncio.to_thread(
                self._store.raise_alerts, candidates, one_per_day, self._clock()
            )
            now = self._clock()
            for alert in raised:
                # A vehicle the registry knows is logged under its VIN, so its owner sees
                # the entry; a plate no vehicle carried has no owner to show it to, and is
                # logged under the plate (docs/DECISIONS.md, "Roadside cameras").
                vin = vins[alert.alert_id]
                self._log.record(ANPR_READER, vin or f"plate:{alert.plate.value}", now)
        return Decided(raised, len(reads) - len(candidates), len(candidates))

    def unpublished(self, *, older_than: timedelta, limit: int = 1_000) -> list[Alert]:
        """Alerts kept but not yet published (a publish that failed, a consumer killed
        between its commit and its publish), older than ``older_than``: a consumer that
        is publishing its own has them younger."""
        return self._store.unpublished(self._clock() - older_than, limit)

    def mark_published(self, alert_ids: Sequence[str]) -> None:
        if alert_ids:
            self._store.mark_published(alert_ids, self._clock())

    def purge(self) -> int:
        """Alerts (and remembered read ids) seen more than ``keep`` ago are deleted."""
        return self._store.purge(self._clock() - self.keep)

    def listed(self, region_prefix: object, since: object = None) -> list[Alert]:
        """``POST /v1/alerts``: the alerts of regions whose code starts with
        ``region_prefix`` seen at or after ``since`` (default: ``keep`` ago), oldest
        first by ``seen_at``, at most ``MAX_LISTED``."""
        if not isinstance(region_prefix, str) or not _PREFIX.fullmatch(region_prefix):
            raise ValidationFailed(
                "region_prefix is the start of a 6-digit region code, e.g. 32 or 320500",
                details=[{"field": "region_prefix", "problem": "0 to 6 digits"}],
            )
        start = self._clock() - self.keep if since is None else parse_instant(since, "since")
        return self._store.listed(region_prefix, start, MAX_LISTED)
