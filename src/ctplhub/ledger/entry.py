"""The ledger entry of a policy event (DESIGN §6): the event with its plate, VIN and
personal fields replaced by salted commitments.

The log is public, so nothing in it may identify a person or give away a verification
factor (the VIN's last six characters open full answers, §3.1). A commitment
``hex(SHA-256(salt || UTF-8 of the value))`` with a fresh 16-byte salt per field and event
hides the value, yet the insurer, who gets the salts in its receipt, can later show a
court which plate or owner an entry was about. The salt makes equal values in two entries
unlinkable and a dictionary of all plates useless.

Pure: the salts come from an injected source and canonical bytes are the caller's (the
project's one JCS lives in ``security``, which the ledger may not import):
``leaf_hash(canonical_json(committed.entry))``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import sha256

SALT_SIZE = 16

COMMITTED_FIELDS: tuple[str, ...] = (
    # The vehicle: a plate is personal data in China's PIPL sense, and the VIN's tail is
    # the verification factor of §3.1.
    "plate",
    "vin",
    # The owner: every field the §2.4 table lists as personal data. Even the id type is
    # committed, since it tells a person (resident_id) from a company (uscc).
    "owner_name",
    "owner_id_type",
    "owner_id_number",
    "owner_phone",
)
"""Fields whose values the entry carries only as commitments."""

CLEAR_FIELDS: tuple[str, ...] = (
    # §6 keeps these in clear: who reported what, which version, when, for how much.
    "insurer_code",
    "policy_no",
    "event_type",
    "version",
    "occurred_at",
    "coverage_start",
    "coverage_end",
    "effective_at",
    "premium",
    # Not about a person and published in aggregate anyway (§11 statistics); §6 does
    # not name them, so they follow the rule "only personal fields are committed".
    "vehicle_type",
    "use_nature",
    "region_code",
    "prior_policy_no",
)
"""Fields the entry carries as they are. A field in neither tuple is refused, so a new
event field cannot slip into the public log in clear unnoticed."""

_COMMITTED = frozenset(COMMITTED_FIELDS)
_KNOWN = _COMMITTED | frozenset(CLEAR_FIELDS)

EntryValue = str | int
SaltSource = Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class CommittedEntry:
    """The public entry object (canonicalise it for the leaf) and the private salts,
    field -> lowercase hex, that go back to the insurer in the receipt and nowhere else.
    Plain dicts so that any JSON encoder takes them; do not mutate them."""

    entry: dict[str, EntryValue]
    salts: dict[str, str]


def random_salt() -> bytes:
    """The production salt source: 16 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(SALT_SIZE)


def commitment(salt: bytes, value: str) -> str:
    """hex(SHA-256(salt || UTF-8(value))): how a committed field appears in the log, and
    how its owner proves the value later."""
    return sha256(salt + value.encode("utf-8")).hexdigest()


def build_entry(
    fields: Mapping[str, EntryValue | None], *, salt_source: SaltSource
) -> CommittedEntry:
    """The entry for one event from its normalised fields, drawing a fresh salt for each
    committed field present. Absent (``None``) fields are left out of the entry, so an
    absent phone is neither committed nor invented."""
    salts: dict[str, str] = {}
    for name in COMMITTED_FIELDS:
        if fields.get(name) is not None:
            salt = salt_source()
            if len(salt) != SALT_SIZE:
                raise ValueError(f"a salt must be {SALT_SIZE} bytes, got {len(salt)}")
            salts[name] = salt.hex()
    return rebuild_entry(fields, salts)


def rebuild_entry(
    fields: Mapping[str, EntryValue | None], salts: Mapping[str, str]
) -> CommittedEntry:
    """The same entry again from the salts it was built with: what the auditor does to
    recompute a leaf from the stored event. Refuses salts that do not fit the fields."""
    unknown = sorted(set(fields) - _KNOWN)
    if unknown:
        raise ValueError(
            f"field(s) {', '.join(unknown)} are neither committed nor clear in the ledger; "
            "add them to COMMITTED_FIELDS or CLEAR_FIELDS"
        )
    present = {name: value for name, value in fields.items() if value is not None}
    expected = sorted(_COMMITTED & present.keys())
    if sorted(salts) != expected:
        raise ValueError(
            f"salts are for {sorted(salts)}, but the committed fields present are {expected}"
        )
    entry: dict[str, EntryValue] = {}
    for name, value in present.items():
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"{name} must be a string or an integer, got {type(value).__name__}")
        if name in _COMMITTED:
            if not isinstance(value, str):
                raise TypeError(f"{name} is committed and must be a string")
            salt = bytes.fromhex(salts[name])
            if len(salt) != SALT_SIZE:
                raise ValueError(f"the salt of {name} must be {SALT_SIZE} bytes")
            entry[name] = commitment(salt, value)
        else:
            entry[name] = value
    return CommittedEntry(entry, dict(salts))
