"""The audit's costly half: each leaf recomputed from its stored event (DESIGN §6).

Per leaf: the salts unsealed, the owner's fields decrypted, the entry rebuilt and hashed,
about four AES-GCM openings and seven SHA-256s, some 50-90 µs of Python. A million leaves
is a minute on one core, so the work is cut into ranges of leaf indexes that worker
processes recompute at once (``RecomputeRanges``, wired by ``bootstrap``), each with its
own connection and keyring; the results come back in order, and the comparisons that need
the whole sequence stay in the auditing process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson

from ctplhub.ledger import leaf_hash
from ctplhub.services.ledger_entries import (
    Canonicaliser,
    EntryBuilder,
    premium_text,
    salts_aad,
    salts_from_plain,
    utc_text,
)
from ctplhub.services.ledger_findings import (
    Finding,
    FindingKind,
    RecomputedLeaf,
    Subject,
    entry_differences,
)
from ctplhub.services.ledger_ports import AuditedLeaf, StoredEventFields
from ctplhub.services.ports import PersonalData
from ctplhub.services.report_events import personal_aad

RANGE_SIZE = 20_000


@dataclass(frozen=True, slots=True)
class Flagged:
    """A leaf whose stored entry is not the one its event and salts rebuild."""

    event_id: int
    rebuilt: bytes | None  # leaf hash of the rebuilt entry (None: nothing to rebuild)
    stored: bytes  # leaf hash of the stored entry bytes
    detail: str


@dataclass(slots=True)
class RecomputedRange:
    """One range's leaves, recomputed, in ``leaf_index`` order, and what it found."""

    leaves: list[RecomputedLeaf] = field(default_factory=list)
    flagged: dict[int, Flagged] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


RecomputeRanges = Callable[[Sequence[tuple[int, int]]], Iterator[RecomputedRange]]
"""Recomputes the leaves of each ``[start, end)`` range, yielding results in that order."""


def leaf_ranges(bound: int, size: int = RANGE_SIZE) -> list[tuple[int, int]]:
    return [(start, min(start + size, bound)) for start in range(0, bound, size)]


class LeafRecomputer:
    def __init__(self, personal: PersonalData, canonicalise: Canonicaliser) -> None:
        self._personal = personal
        self._entries = EntryBuilder(canonicalise)

    def recompute(self, leaves: Iterable[AuditedLeaf]) -> RecomputedRange:
        out = RecomputedRange()
        for leaf in leaves:
            value = self._leaf(leaf, out)
            out.leaves.append((value, leaf.leaf_index, leaf.event_id))
        return out

    def _leaf(self, leaf: AuditedLeaf, out: RecomputedRange) -> bytes:
        """The leaf hash recomputed from the leaf's event (the stored entry's hash when
        there is nothing to recompute from); flags a leaf whose entry differs."""
        stored = leaf_hash(leaf.entry)
        if leaf.event is None:
            out.findings.append(
                Finding(
                    FindingKind.INSERTED,
                    Subject.LEAF,
                    f"leaf {leaf.leaf_index} names event {leaf.event_id}, which is not stored",
                    leaf.leaf_index,
                    leaf.event_id,
                )
            )
            return stored
        try:
            plain = self._personal.decrypt(leaf.salts_enc, aad=salts_aad(leaf.event_id))
            canonical = stored_canonical(self._personal, leaf.event)
            built = self._entries.rebuild(canonical, salts_from_plain(plain))
        except Exception as error:  # a sealed field that does not open was tampered with
            out.flagged[leaf.leaf_index] = Flagged(
                leaf.event_id,
                None,
                stored,
                f"the event's sealed data does not open ({type(error).__name__})",
            )
            return stored
        if built.entry != leaf.entry:
            fields = _differing_fields(built.entry, leaf.entry)
            out.flagged[leaf.leaf_index] = Flagged(
                leaf.event_id, built.leaf_hash, stored, f"fields differ: {', '.join(fields)}"
            )
        return built.leaf_hash


def stored_canonical(personal: PersonalData, event: StoredEventFields) -> tuple[str | None, ...]:
    """``PolicyEvent.canonical()`` of a stored event (its personal fields decrypted)."""
    key = (event.insurer_code, event.policy_no, event.version)
    decrypt = personal.decrypt
    phone = event.owner_phone_enc
    return (
        event.insurer_code,
        event.policy_no,
        event.event_type,
        str(event.version),
        utc_text(event.occurred_at),
        event.plate,
        event.vin,
        event.vehicle_type,
        event.use_nature,
        decrypt(event.owner_name_enc, aad=personal_aad(key, "owner_name")),
        event.owner_id_type,
        decrypt(event.owner_id_enc, aad=personal_aad(key, "owner_id_number")),
        None if phone is None else decrypt(phone, aad=personal_aad(key, "owner_phone")),
        utc_text(event.coverage_start),
        utc_text(event.coverage_end),
        premium_text(event.premium),
        event.region_code,
        event.prior_policy_no,
        None if event.effective_at is None else utc_text(event.effective_at),
    )


def _differing_fields(rebuilt: bytes, stored: bytes) -> list[str]:
    try:
        theirs = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return ["(the stored entry is not JSON)"]
    if not isinstance(theirs, dict):
        return ["(the stored entry is not an object)"]
    return entry_differences(orjson.loads(rebuilt), theirs) or ["(bytes only)"]
