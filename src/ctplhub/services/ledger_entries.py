"""The values a ledger entry commits to, and how its salts are kept (DESIGN §6).

One function of an event's normalised content makes its entry, whoever calls it: the
write path (from the parsed ``PolicyEvent``), the backfill and the auditor (from the
stored row). The values are ``PolicyEvent.canonical()``'s, the same strings the event's
``content_hash`` is made of: instants in UTC as ``isoformat()`` (``+00:00``), the premium
with two decimals, plate and VIN in their canonical form; ``version`` is the one integer;
an absent optional field (``owner_phone``, ``prior_policy_no``, ``effective_at``) is left
out rather than committed or written as null.

The salts go back to the insurer in the receipt and are kept sealed (``salts_enc``) so
that the receipt can be given again and the auditor can rebuild the entry. Their plain
form is one ASCII line: the hex salt of each field of ``COMMITTED_FIELDS``, in that
order, separated by commas, an absent field's slot empty (``owner_phone`` without a
phone). A field added to ``COMMITTED_FIELDS`` later takes a new slot at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from operator import itemgetter

from ctplhub.domain.policy import EVENT_FIELDS
from ctplhub.domain.records import fast_init
from ctplhub.ledger import COMMITTED_FIELDS, CommittedEntry, leaf_hash, rebuild_entry
from ctplhub.ledger.entry import SALT_SIZE, EntryValue

Canonicaliser = Callable[[dict[str, EntryValue]], bytes]
"""RFC 8785 (JCS) bytes of an entry, injected (services may not import security): the
project's one JCS, ``security.answer_signing``; its fast path ``plain_canonical_json``
serves, since an entry is plain by construction (ASCII field names, strings and integers
under 2**31)."""

_SLOTS = len(COMMITTED_FIELDS)
_VERSION = EVENT_FIELDS.index("version")
_LEAF = b"\x00"  # RFC 9162's leaf prefix (``ledger.leaf_hash``, inlined)
# Per event field: (name, position of its salt among COMMITTED_FIELDS, or -1 when clear).
_PLAN = tuple(
    (name, COMMITTED_FIELDS.index(name) if name in COMMITTED_FIELDS else -1)
    for name in EVENT_FIELDS
)


def entry_fields(canonical: Sequence[str | None]) -> dict[str, EntryValue]:
    """The entry's fields from ``PolicyEvent.canonical()`` (or the same tuple rebuilt
    from a stored row): ``version`` as an integer, absent fields left out."""
    fields: dict[str, EntryValue] = {}
    for position, (name, value) in enumerate(zip(EVENT_FIELDS, canonical, strict=True)):
        if value is None:
            continue
        fields[name] = int(value) if position == _VERSION else value
    return fields


def utc_text(value: datetime) -> str:
    """An instant as ``PolicyEvent.canonical()`` writes it (for rows read back)."""
    return value.astimezone(UTC).isoformat()


def premium_text(value: Decimal) -> str:
    return f"{value:.2f}"


def salts_plain(salts: Mapping[str, str]) -> str:
    """The sealed form's plain text (see the module doc)."""
    return ",".join(salts.get(name, "") for name in COMMITTED_FIELDS)


def salts_from_plain(text: str) -> dict[str, str]:
    slots = text.split(",")
    if len(slots) != _SLOTS:
        raise ValueError(f"sealed salts hold {len(slots)} slots, not {_SLOTS}")
    return {name: salt for name, salt in zip(COMMITTED_FIELDS, slots, strict=True) if salt}


def salts_aad(event_id: int) -> bytes:
    """Binds sealed salts to their event, so that salts copied to another leaf fail."""
    return b"ledger_leaves|%d|salts" % event_id


@fast_init
@dataclass(frozen=True, slots=True)
class BuiltEntry:
    """An entry ready to append: its JCS bytes, its leaf hash and its salts in their
    sealed form's plain text (``salts_plain``; ``salts`` is the field -> hex mapping)."""

    entry: bytes
    leaf_hash: bytes
    salts_plain: str

    @property
    def salts(self) -> dict[str, str]:
        return salts_from_plain(self.salts_plain)


@dataclass(slots=True)
class BuiltEntries:
    """A chunk's entries column by column, as ``EntryBuilder.build_many`` makes them and
    ``LedgerWriter.append`` takes them: no object per event on the ingest path."""

    entries: list[bytes]
    leaf_hashes: list[bytes]
    salts_plain: list[str]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, position: int) -> BuiltEntry:
        return BuiltEntry(
            self.entries[position], self.leaf_hashes[position], self.salts_plain[position]
        )

    @classmethod
    def of(cls, built: Sequence[BuiltEntry]) -> BuiltEntries:
        return cls(
            [b.entry for b in built], [b.leaf_hash for b in built], [b.salts_plain for b in built]
        )


# The build's plan. Clear fields by position (an ``itemgetter`` picks them in one call),
# committed fields by position and salt slot; the version is the one integer.
_CLEAR = tuple(name for name in EVENT_FIELDS if name not in COMMITTED_FIELDS)
_PICK_CLEAR = itemgetter(*(EVENT_FIELDS.index(name) for name in _CLEAR))
_COMMITTED_AT = tuple(
    (name, EVENT_FIELDS.index(name), slot * SALT_SIZE) for slot, name in enumerate(COMMITTED_FIELDS)
)
_POOL = SALT_SIZE * _SLOTS


class EntryBuilder:
    """Builds entries with fresh salts: one read of the CSPRNG per chunk (96 bytes an
    event, cut into its six 16-byte salts) rather than one per field or event.

    Ingest builds one entry per event and the audit rebuilds a million, so both walk the
    event's fields once, committing as they go, instead of going through
    ``ledger.rebuild_entry``'s general checks; a test holds the two equal (and the
    canonicaliser's bytes equal to RFC 8785's)."""

    def __init__(self, canonicalise: Canonicaliser) -> None:
        self._canonicalise = canonicalise

    def build(self, canonical: Sequence[str | None]) -> BuiltEntry:
        return self.build_many([canonical])[0]

    def build_many(self, canonicals: Sequence[Sequence[str | None]]) -> BuiltEntries:
        """The entries of many events (a chunk), each with its own fresh salts.

        The salts' plain text is the pool's hex cut every 16 bytes (``bytes.hex``'s
        separator), which is ``salts_plain`` of the six salts when every committed field
        is present; an absent one (a phone) empties its slot."""
        pool = os.urandom(_POOL * len(canonicals))
        canonicalise = self._canonicalise
        entries: list[bytes] = []
        hashes: list[bytes] = []
        plains: list[str] = []
        base = 0
        for canonical in canonicals:
            clear = _PICK_CLEAR(canonical)
            entry: dict[str, EntryValue] = dict(zip(_CLEAR, clear, strict=True))
            if None in clear:  # an absent optional field is left out
                entry = {name: value for name, value in entry.items() if value is not None}
            entry["version"] = int(canonical[_VERSION])  # type: ignore[arg-type]
            absent = False
            for name, position, offset in _COMMITTED_AT:
                value = canonical[position]
                if value is None:
                    absent = True
                    continue
                start = base + offset
                entry[name] = sha256(pool[start : start + SALT_SIZE] + value.encode()).hexdigest()
            data = canonicalise(entry)
            entries.append(data)
            hashes.append(sha256(_LEAF + data).digest())
            if absent:
                plains.append(
                    ",".join(
                        ""
                        if canonical[position] is None
                        else pool[base + offset : base + offset + SALT_SIZE].hex()
                        for _, position, offset in _COMMITTED_AT
                    )
                )
            else:
                plains.append(pool[base : base + _POOL].hex(",", SALT_SIZE))
            base += _POOL
        return BuiltEntries(entries, hashes, plains)

    def rebuild(self, canonical: Sequence[str | None], salts: Mapping[str, str]) -> BuiltEntry:
        """The same entry again from its salts (raises ``ValueError`` when they do not
        fit the fields: a committed field present without a salt, or the other way)."""
        raw = [salts.get(name) for name in COMMITTED_FIELDS]
        entry, used = self._committed(
            canonical, [None if value is None else bytes.fromhex(value) for value in raw]
        )
        if used.keys() != salts.keys():
            raise ValueError(f"salts are for {sorted(salts)}, the committed fields {sorted(used)}")
        return self._finish(entry, used)

    @staticmethod
    def _committed(
        canonical: Sequence[str | None], salts: Sequence[bytes | None]
    ) -> tuple[dict[str, EntryValue], dict[str, str]]:
        entry: dict[str, EntryValue] = {}
        used: dict[str, str] = {}
        for (name, slot), value in zip(_PLAN, canonical, strict=True):
            if value is None:
                continue
            if slot < 0:
                entry[name] = int(value) if name == "version" else value
                continue
            salt = salts[slot]
            if salt is None or len(salt) != SALT_SIZE:
                raise ValueError(f"{name} has no {SALT_SIZE}-byte salt")
            entry[name] = sha256(salt + value.encode("utf-8")).hexdigest()
            used[name] = salt.hex()
        return entry, used

    def _finish(self, entry: dict[str, EntryValue], salts: dict[str, str]) -> BuiltEntry:
        data = self._canonicalise(entry)
        return BuiltEntry(data, leaf_hash(data), salts_plain(salts))


def committed_entry(canonical: Sequence[str | None], salts: Mapping[str, str]) -> CommittedEntry:
    """The entry by ``ledger.rebuild_entry``, the general and checked way: what the fast
    path of ``EntryBuilder`` must equal."""
    return rebuild_entry(entry_fields(canonical), salts)
