"""The ports of envelope keys (DESIGN §5.3): a wrapped data key as stored, the sealed
rows a rotation moves, and what it needs of the keyring. ``store`` and ``security``
implement them; ``services.key_rotation`` uses them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ctplhub.services.ports import PersonalData

FIELD = "field"
BLIND = "blind"
ACTIVE = "active"
RETIRING = "retiring"
RETIRED = "retired"
MAX_BLIND_SEQ = 255  # a blind index names its key in one byte


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A row of ``data_keys``: a data key sealed under the master key ``master_kid``."""

    kid: str
    purpose: str  # FIELD or BLIND
    seq: int
    wrapped: bytes
    master_kid: str
    state: str  # ACTIVE, RETIRING or RETIRED
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """A policy event's personal fields as stored."""

    id: int
    insurer_code: str
    policy_no: str
    version: int
    owner_name_enc: bytes
    owner_id_enc: bytes
    owner_phone_enc: bytes | None
    owner_id_bidx: bytes


@dataclass(frozen=True, slots=True)
class SealedSalts:
    """A ledger leaf's sealed salts (DESIGN §6), bound to its event's id."""

    leaf_index: int
    event_id: int
    salts_enc: bytes


@dataclass(frozen=True, slots=True)
class SealedSecret:
    key_id: str
    secret_enc: bytes


@dataclass(frozen=True, slots=True)
class SealedAddress:
    """A reminder subscription's sealed address and its blind index (DESIGN §7)."""

    id: int
    vin: str
    channel: str
    address_enc: bytes
    address_bidx: bytes


@dataclass(frozen=True, slots=True)
class SealedDisputeText:
    """A dispute's sealed free text (DESIGN §10): the owner's message (``kind`` "message",
    ``row_id`` the dispute, ``binding`` its token hash) or an insurer's resolution note
    (``kind`` "note", ``row_id`` the history entry, ``binding`` the dispute id)."""

    kind: str
    row_id: int
    binding: str
    blob: bytes


@dataclass(frozen=True, slots=True)
class SealedJobBlob:
    """A verify job chunk's sealed rows (``part`` "input") or answers ("result"), DESIGN
    §11: plates and VINs, under the field key like the other personal data."""

    chunk_id: int
    job_id: str
    chunk_no: int
    part: str
    blob: bytes


@dataclass(frozen=True, slots=True)
class Markers:
    """How rows under the active keys begin: the field blobs' header, the index's byte."""

    field_header: bytes
    blind_prefix: bytes


class DataKeyRepository(Protocol):
    def all(self) -> list[WrappedDataKey]: ...
    def begin_rotation(self, new_keys: Sequence[WrappedDataKey]) -> None:
        """In one transaction: the active keys become retiring, ``new_keys`` active."""
        ...

    def retire(self, at: datetime) -> list[str]:
        """Retiring keys become retired; returns their kids."""
        ...

    def rewrap(self, keys: Sequence[WrappedDataKey]) -> None: ...


class SealedRows(Protocol):
    """The rows that hold ciphertext or blind indexes (``store``)."""

    def stale_events(self, after_id: int, limit: int, markers: Markers) -> list[SealedEvent]:
        """Events with id > ``after_id`` not under the active keys, by id, at most ``limit``."""
        ...

    def count_stale_events(self, markers: Markers) -> int: ...
    def reseal_events(self, rows: Sequence[SealedEvent]) -> None:
        """Write the rows' four sealed columns, by id, in one transaction."""
        ...

    def stale_salts(self, after_leaf: int, limit: int, markers: Markers) -> list[SealedSalts]:
        """Ledger leaves past ``after_leaf`` whose salts are not under the active key."""
        ...

    def count_stale_salts(self, markers: Markers) -> int: ...
    def reseal_salts(self, rows: Sequence[SealedSalts]) -> None: ...

    def insurer_secrets(self) -> list[SealedSecret]: ...
    def reseal_secrets(self, rows: Sequence[SealedSecret]) -> None: ...

    def stale_addresses(self, after_id: int, limit: int, markers: Markers) -> list[SealedAddress]:
        """Subscriptions (id > ``after_id``) whose address or index is not under the
        active keys, by id."""
        ...

    def count_stale_addresses(self, markers: Markers) -> int: ...
    def reseal_addresses(self, rows: Sequence[SealedAddress]) -> None: ...

    def stale_dispute_texts(self, limit: int, markers: Markers) -> list[SealedDisputeText]:
        """Dispute messages and notes not under the active field key, at most ``limit``."""
        ...

    def reseal_dispute_texts(self, rows: Sequence[SealedDisputeText]) -> None: ...

    def stale_job_blobs(self, limit: int, markers: Markers) -> list[SealedJobBlob]:
        """Verify job chunks' blobs not under the active field key, at most ``limit``."""
        ...

    def reseal_job_blobs(self, rows: Sequence[SealedJobBlob], old: Sequence[bytes]) -> int:
        """Write each row's blob where the stored one is still ``old`` (same position): a
        runner may have answered the chunk meanwhile. Returns the blobs written."""
        ...


class RotatingKeys(PersonalData, Protocol):
    """The keyring of this process, as a rotation needs it (``security.envelope``)."""

    def reload(self) -> None: ...
    def markers(self) -> Markers: ...
    def new_data_key(self, purpose: str, seq: int, at: datetime) -> WrappedDataKey: ...
    def rewrapped(self, key: WrappedDataKey) -> WrappedDataKey: ...
