"""Use case: rotate the personal-data keys while the server keeps answering (DESIGN §5.3,
§8 ``ctplhub keys rotate``).

Beside the events' personal fields, the ledger leaves' salts (DESIGN §6) are sealed under
the same field keys and move the same way, after the events; the report counts them apart
(``leaves_*``), and "not under the active keys" covers both.

A rotation makes a new active field key and a new active blind-index key, then moves
every row to them in batches, one transaction each: personal fields are decrypted under
whatever key they name and sealed again under the active one; the ID number's blind
index is recomputed from the decrypted number. Readers in every process accept any known
key throughout, so a half-rotated table answers exactly like a rotated one.

The work left is always "rows not under the active keys", found by their bytes in SQL,
so an interrupted rotation is resumed by running it again: it makes no new key while
the last rotation is unfinished (keys still ``retiring``, or rows not yet under the
active keys). The old keys become ``retired`` only after a pass finds no row under them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ctplhub.domain.errors import ValidationFailed
from ctplhub.services.disputes import message_aad, note_aad
from ctplhub.services.insurers import secret_aad
from ctplhub.services.key_ports import (
    ACTIVE,
    BLIND,
    FIELD,
    MAX_BLIND_SEQ,
    RETIRING,
    DataKeyRepository,
    Markers,
    RotatingKeys,
    SealedEvent,
    SealedRows,
    SealedSalts,
    SealedSecret,
    WrappedDataKey,
)
from ctplhub.services.key_rotation_jobs import reseal_job_blobs
from ctplhub.services.ledger_entries import salts_aad
from ctplhub.services.ports import Clock, RetryableConflict
from ctplhub.services.reminders import address_aad, address_index_value
from ctplhub.services.report_events import personal_aad


@dataclass
class RotationReport:
    field_kid: str
    blind_kid: str
    resumed: bool
    started_with: int  # rows not under the active keys when the run began
    resealed: int = 0
    secrets_resealed: int = 0
    batches: int = 0
    remaining: int = 0
    complete: bool = False
    retired: list[str] | None = None
    leaves_to_rotate: int = 0  # ledger leaves whose salts were not under the active key
    leaves_resealed: int = 0
    leaves_remaining: int = 0
    addresses_resealed: int = 0  # reminder subscriptions' addresses (DESIGN §7)
    dispute_texts_resealed: int = 0  # disputes' messages and notes (DESIGN §10)
    job_blobs_resealed: int = 0  # verify jobs' rows and answers (DESIGN §11)

    def as_json(self) -> dict[str, object]:
        return {
            "field_kid": self.field_kid,
            "blind_kid": self.blind_kid,
            "resumed": self.resumed,
            "rows_to_rotate": self.started_with,
            "rows_resealed": self.resealed,
            "insurer_secrets_resealed": self.secrets_resealed,
            "batches": self.batches,
            "remaining": self.remaining,
            "complete": self.complete,
            "retired_kids": self.retired or [],
            "ledger_salts_to_rotate": self.leaves_to_rotate,
            "ledger_salts_resealed": self.leaves_resealed,
            "ledger_salts_remaining": self.leaves_remaining,
            "subscription_addresses_resealed": self.addresses_resealed,
            "dispute_texts_resealed": self.dispute_texts_resealed,
            "verify_job_blobs_resealed": self.job_blobs_resealed,
        }


Progress = Callable[[int], None]  # called with the number of rows a batch resealed


class KeyRotation:
    def __init__(
        self,
        data_keys: DataKeyRepository,
        rows: SealedRows,
        keyring: RotatingKeys,
        clock: Clock,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._keys = data_keys
        self._rows = rows
        self._ring = keyring
        self._clock = clock
        self._sleep = sleep

    def ensure_active_keys(self) -> list[str]:
        """``ctplhub init``: the first data keys when none is active; the kids it made."""
        keys = self._keys.all()
        active = {k.purpose for k in keys if k.state == ACTIVE}
        now = self._clock()
        new = [
            self._ring.new_data_key(p, _next_seq(keys, p), now)
            for p in (FIELD, BLIND)
            if p not in active
        ]
        if not new:
            return []
        try:
            self._keys.begin_rotation(new)
        except RetryableConflict:
            return []  # a concurrent `ctplhub init` made them first
        return [k.kid for k in new]

    def begin(self) -> RotationReport:
        """Start a rotation, or pick up the unfinished one; counts the work left.

        A rotation is unfinished while keys of it are still retiring or rows are not yet
        under its keys (an upgraded install's rows under the key files, for instance):
        then no new key is made, so running the command again continues the same work.
        """
        self._ring.reload()
        keys = self._keys.all()
        active = {k.purpose: k.kid for k in keys if k.state == ACTIVE}
        resumed = {FIELD, BLIND} <= active.keys() and (
            any(k.state == RETIRING for k in keys) or self._stale(self._ring.markers()) > 0
        )
        if not resumed:
            now = self._clock()
            new = [self._ring.new_data_key(p, _next_seq(keys, p), now) for p in (FIELD, BLIND)]
            self._keys.begin_rotation(new)
            self._ring.reload()
            active = {k.purpose: k.kid for k in new}
        markers = self._ring.markers()
        started_with = self._rows.count_stale_events(markers)
        report = RotationReport(active[FIELD], active[BLIND], resumed, started_with)
        report.leaves_to_rotate = self._rows.count_stale_salts(markers)
        return report

    def run(
        self,
        report: RotationReport,
        *,
        batch_size: int = 1000,
        max_batches: int | None = None,
        settle_s: float = 30.0,
        progress: Progress | None = None,
    ) -> RotationReport:
        """Move every row to the active keys; with ``max_batches``, stop after that many.

        Processes pick up a new active key within ``envelope.KEY_REFRESH_S``, and a write
        sealed just before may commit a little later: after ``settle_s`` a last pass over
        the whole table finds such rows, and the old keys retire only when it finds none.
        """
        started = time.monotonic()
        markers = self._ring.markers()
        while True:
            report.secrets_resealed += self._reseal_secrets(markers)
            report.addresses_resealed += self._reseal_addresses(markers)
            report.dispute_texts_resealed += self._reseal_dispute_texts(markers)
            report.job_blobs_resealed += reseal_job_blobs(self._rows, self._ring, markers)
            if not self._pass(report, markers, batch_size, max_batches, progress):
                report.remaining = self._rows.count_stale_events(markers)
                report.leaves_remaining = self._rows.count_stale_salts(markers)
                return report
            waited = time.monotonic() - started
            if waited >= settle_s and self._stale(markers) == 0:
                break
            self._sleep(max(0.0, settle_s - waited))
            settle_s = 0.0  # one settling wait; then pass until a pass finds nothing
        report.retired = self._keys.retire(self._clock())
        report.complete = True
        return report

    def _pass(
        self,
        report: RotationReport,
        markers: Markers,
        batch_size: int,
        max_batches: int | None,
        progress: Progress | None,
    ) -> bool:
        """One pass from the first row, events then ledger salts; False when
        ``max_batches`` stopped it."""
        after = 0
        while True:
            if max_batches is not None and report.batches >= max_batches:
                return False
            stale = self._rows.stale_events(after, batch_size, markers)
            if not stale:
                break
            self._rows.reseal_events([self._reseal(row) for row in stale])
            report.batches += 1
            report.resealed += len(stale)
            after = stale[-1].id
            if progress is not None:
                progress(len(stale))
        after = -1
        while True:
            if max_batches is not None and report.batches >= max_batches:
                return False
            salts = self._rows.stale_salts(after, batch_size, markers)
            if not salts:
                return True
            self._rows.reseal_salts([self._reseal_salts(row) for row in salts])
            report.batches += 1
            report.leaves_resealed += len(salts)
            after = salts[-1].leaf_index
            if progress is not None:
                progress(len(salts))

    def _stale(self, markers: Markers) -> int:
        return (
            self._rows.count_stale_events(markers)
            + self._rows.count_stale_salts(markers)
            + self._rows.count_stale_addresses(markers)
            + len(self._rows.stale_dispute_texts(1, markers))
            + len(self._rows.stale_job_blobs(1, markers))
        )

    def _reseal_addresses(self, markers: Markers, batch_size: int = 1000) -> int:
        """Reminder subscriptions' addresses and their blind indexes, like the events'
        personal fields (few rows: one pass of batches)."""
        ring = self._ring
        moved, after = 0, 0
        while rows := self._rows.stale_addresses(after, batch_size, markers):
            again = []
            for row in rows:
                aad = address_aad(row.vin, row.channel)
                address = ring.decrypt(row.address_enc, aad=aad)
                again.append(
                    replace(
                        row,
                        address_enc=ring.encrypt(address, aad=aad),
                        address_bidx=ring.blind_index(address_index_value(row.channel, address)),
                    )
                )
            self._rows.reseal_addresses(again)
            moved += len(rows)
            after = rows[-1].id
        return moved

    def _reseal_dispute_texts(self, markers: Markers, batch_size: int = 1000) -> int:
        """Disputes' messages and resolution notes (free text that may name people),
        sealed again under the active field key (few rows: batches until none is left)."""
        ring, moved = self._ring, 0
        while rows := self._rows.stale_dispute_texts(batch_size, markers):
            again = []
            for row in rows:
                aad = (
                    message_aad(row.binding)
                    if row.kind == "message"
                    else note_aad(int(row.binding))
                )
                again.append(
                    replace(row, blob=ring.encrypt(ring.decrypt(row.blob, aad=aad), aad=aad))
                )
            self._rows.reseal_dispute_texts(again)
            moved += len(rows)
        return moved

    def _reseal_salts(self, row: SealedSalts) -> SealedSalts:
        aad = salts_aad(row.event_id)
        plain = self._ring.decrypt(row.salts_enc, aad=aad)
        return SealedSalts(row.leaf_index, row.event_id, self._ring.encrypt(plain, aad=aad))

    def _reseal(self, row: SealedEvent) -> SealedEvent:
        ring = self._ring
        key = (row.insurer_code, row.policy_no, row.version)

        def again(blob: bytes, field: str) -> bytes:
            aad = personal_aad(key, field)
            return ring.encrypt(ring.decrypt(blob, aad=aad), aad=aad)

        id_aad = personal_aad(key, "owner_id_number")
        id_number = ring.decrypt(row.owner_id_enc, aad=id_aad)
        return SealedEvent(
            id=row.id,
            insurer_code=row.insurer_code,
            policy_no=row.policy_no,
            version=row.version,
            owner_name_enc=again(row.owner_name_enc, "owner_name"),
            owner_id_enc=ring.encrypt(id_number, aad=id_aad),
            owner_phone_enc=(
                None if row.owner_phone_enc is None else again(row.owner_phone_enc, "owner_phone")
            ),
            owner_id_bidx=ring.blind_index(id_number),
        )

    def _reseal_secrets(self, markers: Markers) -> int:
        ring = self._ring
        moved = []
        for secret in self._rows.insurer_secrets():
            if secret.secret_enc.startswith(markers.field_header):
                continue
            aad = secret_aad(secret.key_id)
            plain = ring.decrypt(secret.secret_enc, aad=aad)
            moved.append(SealedSecret(secret.key_id, ring.encrypt(plain, aad=aad)))
        if moved:
            self._rows.reseal_secrets(moved)
        return len(moved)

    def status(self) -> tuple[list[WrappedDataKey], int]:
        """The data keys, and how many rows are not under the active ones."""
        self._ring.reload()
        return self._keys.all(), self._stale(self._ring.markers())

    def rotate_master(self) -> list[str]:
        """Wrap every data key again under the active master key; returns their kids.

        The caller has made the new master key active in this process's keyring first.
        """
        keys = self._keys.all()
        self._keys.rewrap([self._ring.rewrapped(k) for k in keys])
        return [k.kid for k in keys]


def _next_seq(keys: Sequence[WrappedDataKey], purpose: str) -> int:
    seq = max((k.seq for k in keys if k.purpose == purpose), default=0) + 1
    if purpose == BLIND and seq > MAX_BLIND_SEQ:
        raise ValidationFailed(
            f"blind-index keys are numbered in one byte: {MAX_BLIND_SEQ} rotations used up"
        )
    return seq
