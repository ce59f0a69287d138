"""The ports services depend on; ``store`` and ``security`` implement them.

Services see rows as small dataclasses defined here, never SQLAlchemy objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ctplhub.domain.policy import PolicyHead
from ctplhub.domain.records import fast_init
from ctplhub.domain.vehicle import VehicleSnapshot

if TYPE_CHECKING:  # the ledger's ports import this module's Clock
    from ctplhub.services.ledger_ports import LedgerRepository

Clock = Callable[[], datetime]
EventKey = tuple[str, str, int]
PolicyKey = tuple[str, str]


@fast_init
@dataclass(frozen=True, slots=True)
class StoredEventRef:
    """What an idempotent repeat needs to answer as the first time did."""

    event_id: int
    content_hash: str
    received_at: datetime


class NewEventRow(NamedTuple):
    """An accepted event, personal fields already encrypted (a tuple: it goes to COPY
    as it is, in column order)."""

    insurer_code: str
    policy_no: str
    version: int
    event_type: str
    occurred_at: datetime
    received_at: datetime
    plate: str
    vin: str
    vehicle_type: str
    use_nature: str
    owner_id_type: str
    owner_name_enc: bytes
    owner_id_enc: bytes
    owner_phone_enc: bytes | None
    owner_id_bidx: bytes
    coverage_start: datetime
    coverage_end: datetime
    effective_at: datetime | None
    premium: Decimal
    region_code: str
    prior_policy_no: str | None
    content_hash: str


@fast_init
@dataclass(frozen=True, slots=True)
class HeadRow:
    """A policy's new highest version (the state coverage is computed from)."""

    insurer_code: str
    policy_no: str
    version: int
    event_type: str
    vin: str
    coverage_start: datetime
    coverage_end: datetime
    effective_at: datetime | None
    event_index: int  # position in the batch of rows being inserted


@fast_init
@dataclass(frozen=True, slots=True)
class InsurerRecord:
    code: str
    name: str
    status: str
    status_reason: str | None
    status_changed_at: datetime
    last_sync_at: datetime | None
    claims_phone: str | None = None  # for the other party of an accident (DESIGN §11)


@fast_init
@dataclass(frozen=True, slots=True)
class InsurerKeyRecord:
    key_id: str
    insurer_code: str
    secret_enc: bytes
    # Refused from this instant on (`ctplhub insurer rotate-secret`: the overlap's end).
    valid_until: datetime | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class UserRecord:
    """An account as services see it: never its token or password hash."""

    name: str
    role: str
    created_at: datetime
    token_expires_at: datetime
    disabled_at: datetime | None
    has_password: bool


@fast_init
@dataclass(frozen=True, slots=True)
class Activity:
    accepted: int
    rejected: int


class EventRepository(Protocol):
    def stored(self, keys: Sequence[EventKey]) -> dict[EventKey, StoredEventRef]: ...
    def add_many(self, rows: Sequence[NewEventRow]) -> list[int]: ...


class PolicyRepository(Protocol):
    def heads(self, keys: Sequence[PolicyKey]) -> dict[PolicyKey, PolicyHead]: ...
    def upsert_heads(self, rows: Sequence[HeadRow], event_ids: Sequence[int]) -> None: ...


class InsurerRepository(Protocol):
    def get(self, code: str) -> InsurerRecord | None: ...
    def all(self) -> list[InsurerRecord]: ...
    def add(
        self, code: str, name: str, actor: str, at: datetime, claims_phone: str | None = None
    ) -> None: ...
    def set_status(self, code: str, status: str, reason: str, actor: str, at: datetime) -> None: ...
    def add_key(self, key_id: str, code: str, secret_enc: bytes, at: datetime) -> None: ...
    def key(self, key_id: str) -> InsurerKeyRecord | None: ...
    def end_keys(self, code: str, at: datetime) -> list[str]:
        """Every key of ``code`` that would outlive ``at`` now ends at ``at``; their ids."""
        ...

    def touch_sync(self, code: str, at: datetime) -> None: ...
    def record_activity(
        self, code: str, minute: datetime, accepted: int, rejected: int
    ) -> None: ...
    def activity_since(self, code: str, since: datetime) -> Activity: ...


class UserRepository(Protocol):
    """Accounts and their staff page sessions (one table family)."""

    def exists(self, name: str) -> bool: ...
    def add(
        self, name: str, role: str, token_hash: str, token_expires_at: datetime, at: datetime
    ) -> None: ...
    def get(self, name: str) -> UserRecord | None: ...
    def all(self) -> list[UserRecord]: ...
    def by_token_hash(self, token_hash: str) -> UserRecord | None: ...
    def set_token(self, name: str, token_hash: str, expires_at: datetime) -> None: ...
    def set_disabled(self, name: str, at: datetime | None) -> None: ...
    def set_password(self, name: str, password_hash: str) -> None: ...
    def password_hash(self, name: str) -> str | None: ...
    def add_session(
        self, id_hash: str, name: str, created_at: datetime, expires_at: datetime
    ) -> None: ...
    def session_user(self, id_hash: str, now: datetime) -> UserRecord | None: ...
    def delete_session(self, id_hash: str) -> None: ...
    def delete_sessions(self, name: str) -> None: ...
    def delete_expired_sessions(self, now: datetime) -> None: ...


class UnitOfWork(Protocol):
    """One transaction: the use case calls ``commit`` once; leaving without it rolls back."""

    events: EventRepository
    policies: PolicyRepository
    insurers: InsurerRepository
    users: UserRepository
    ledger: LedgerRepository  # the Merkle log, appended in the events' transaction

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True, slots=True)
class ReadPart:
    """One part of a read: the plates and VINs it was read for, and what it found. Its
    snapshot is complete for them (``VehicleReader``), so they are answered from it alone."""

    plates: Sequence[str]
    vins: Sequence[str]
    snapshot: VehicleSnapshot


class VehicleReader(Protocol):
    """The one read path of coverage answers, awaited on the server's event loop: the
    owner's query, the police's bulk verify and the web page all read through it.

    ``vehicles`` returns the complete histories of every vehicle that ever carried one of
    ``plates`` or has one of ``vins``; which vehicle a plate means at an instant is the
    domain's rule (``VehicleSnapshot.at_plate``). A bulk read's (see ``vehicle_parts``)
    carry no ``owner_index``.
    """

    async def vehicles(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot: ...
    def vehicle_parts(self, plates: Sequence[str], vins: Sequence[str]) -> AsyncIterator[ReadPart]:
        """The same read in parts, each as soon as it is read (a bulk read goes out in
        chunks): a caller answers the plates and VINs of one part while the next is read.
        Every plate and VIN asked is in exactly one part. A bulk read (more keys than an
        owner's question) leaves each vehicle's ``owner_index`` None: only an owner's own
        question compares it, and it is a tenth of a bulk read's bytes."""
        ...

    async def insurers(self) -> list[InsurerRecord]: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...


class ReadFence(Protocol):
    """Read-your-writes across a lagging replica (docs/deploy.md, "Read routing"): after
    a write commits, and before its answer goes out, the ledger size it reached is
    published; a read that may go to the replica goes there only once the replica holds
    at least that many leaves."""

    def passed(self, ledger_size: int) -> None: ...


class PlannerStatistics(Protocol):
    def refresh(self, written: int) -> list[str]:
        """After a bulk load of ``written`` events: refresh what it made stale."""
        ...


class NonceVerdict(Enum):
    """What a nonce store says of a signed request's nonce."""

    NEW = "new"  # recorded now: the request may go on
    SEEN = "seen"  # already used within the window: a replay
    # Signed no later than the instant the store's memory was found empty (a Redis that
    # restarted or was flushed): its nonce may have been used before and forgotten.
    BEFORE_MEMORY = "before_memory"


class NonceStore(Protocol):
    def remember(
        self, key_id: str, nonce: str, now: datetime, ttl_s: int, *, signed_at: int
    ) -> NonceVerdict:
        """Record a nonce of a request signed at ``signed_at`` (unix seconds).

        ``SEEN`` when it was already seen within ``ttl_s``; ``BEFORE_MEMORY`` when the
        store cannot know (it lost its memory less than ``2 * ttl_s`` ago and the request
        was signed no later than that); then nothing is recorded.
        """
        ...


class PersonalData(Protocol):
    """Encryption at rest and the blind index (DESIGN §5.3)."""

    def encrypt(self, plaintext: str, *, aad: bytes) -> bytes: ...
    def encrypt_many(self, plaintexts: Sequence[str], aads: Sequence[bytes]) -> list[bytes]:
        """``encrypt`` of each plaintext under its associated data, in order (a chunk)."""
        ...

    def decrypt(self, blob: bytes, *, aad: bytes) -> str: ...
    def blind_index(self, value: str) -> bytes: ...
    def blind_index_matches(self, held: bytes, given: str) -> bool:
        """Whether a stored index is that of ``given``, under whichever key made it."""
        ...


class RetryableConflict(Exception):
    """A concurrent writer got there first; the use case re-reads and tries again."""


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- The access log (DESIGN §5.3): who read which vehicle's data, and why. ---


@fast_init
@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a vehicle's data and why: ``actor`` is a user name, an insurer code or
    ``anonymous`` (owners), ``role`` one of the role names of DESIGN §1, ``purpose`` a
    short snake_case code (``coverage_query``, ``bulk_verify``, ``hotline``, ...)."""

    actor: str
    role: str
    purpose: str
    request_id: str | None = None
    # An accident look-up's case reference and reason code (DESIGN §11), kept in its row.
    reference: str | None = None
    reason: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One read as its vehicle's owner sees it: when, by which role, why."""

    at: datetime
    actor_role: str
    purpose: str


class AccessRow(NamedTuple):
    """A row of ``access_log`` as written, in column order; the vehicle is a keyed index."""

    at: datetime
    actor: str
    actor_role: str
    purpose: str
    vehicle_key: bytes
    request_id: str | None
    reference: str | None = None
    reason: str | None = None


class AccessLog(Protocol):
    """The append-only access log. ``record`` is called on the answer path: it only queues
    (microseconds, never blocks, never raises); the entries reach the database in batches."""

    def record(self, reader: Reader, vin: str, at: datetime) -> None: ...
    def record_many(self, reader: Reader, vins: Iterable[str], at: datetime) -> None: ...
    async def entries(self, vin: str, *, since: datetime, limit: int) -> list[AccessEntry]:
        """The vehicle's entries since ``since``, newest first, at most ``limit``; every
        entry this process recorded before the call is included."""
        ...


class AccessLogStore(Protocol):
    """Where the access log's batches go (``store``); called on a worker thread."""

    def append(self, rows: Sequence[AccessRow]) -> None: ...
    def newest(self, vehicle_key: bytes, since: datetime, limit: int) -> list[AccessEntry]: ...
