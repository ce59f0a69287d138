"""The audit's pure comparisons and the entry's values (services/ledger_findings.py,
services/ledger_entries.py): one finding per tampering, wherever it happens."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.policy import EVENT_FIELDS, parse_event
from ctplhub.ledger import (
    CompactRange,
    hashes_per_leaf,
    leaf_hash,
    stored_hash_count,
    stored_hash_home,
    stored_hash_index,
)
from ctplhub.security.answer_signing import canonical_json
from ctplhub.services.ledger_entries import (
    EntryBuilder,
    committed_entry,
    entry_fields,
    salts_from_plain,
    salts_plain,
)
from ctplhub.services.ledger_findings import StoredHashCheck, align_leaves
from helpers import event


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(f"leaf {i}".encode()).digest() for i in range(n)]


def recomputed(hashes: list[bytes]) -> list[tuple[bytes, int, int]]:
    return [(h, i, 100 + i) for i, h in enumerate(hashes)]


def kinds(found: object) -> list[tuple[str, int, int | None]]:
    return [(m.kind.value, m.position, m.leaf_index) for m in found]  # type: ignore[attr-defined]


def test_equal_sequences_align() -> None:
    assert list(align_leaves(recomputed(leaves(9)), leaves(9))) == []


@given(st.integers(min_value=2, max_value=40), st.data())
def test_one_removal_is_one_finding_wherever_it_is(n: int, data: st.DataObject) -> None:
    stored = leaves(n)
    gone = data.draw(st.integers(min_value=0, max_value=n - 1))
    rows = recomputed(stored)
    del rows[gone]
    assert kinds(align_leaves(rows, stored)) == [("removed", gone, None)]


@given(st.integers(min_value=1, max_value=40), st.data())
def test_one_insertion_is_one_finding_wherever_it_is(n: int, data: st.DataObject) -> None:
    stored = leaves(n)
    at = data.draw(st.integers(min_value=0, max_value=n))
    rows = recomputed(stored)
    rows.insert(at, (b"\xff" * 32, 999, 7))
    assert kinds(align_leaves(rows, stored)) == [("inserted", at, 999)]


@given(st.integers(min_value=1, max_value=40), st.data())
def test_one_alteration_is_one_finding_wherever_it_is(n: int, data: st.DataObject) -> None:
    stored = leaves(n)
    at = data.draw(st.integers(min_value=0, max_value=n - 1))
    rows = recomputed(stored)
    rows[at] = (b"\xee" * 32, at, 100 + at)
    assert kinds(align_leaves(rows, stored)) == [("altered", at, at)]


def stored_rows(n: int) -> list[tuple[int, bytes]]:
    """``(leaf_index, hashes)`` of a whole log of ``n`` leaves, as ``ledger_leaves`` holds it."""
    return list(enumerate(hashes_per_leaf(list(CompactRange().iter_append(leaves(n))))))


def altered(rows: list[tuple[int, bytes]], index: int, value: bytes) -> None:
    leaf, level = stored_hash_home(index)
    held = rows[leaf][1]
    rows[leaf] = (leaf, held[: level * 32] + value + held[(level + 1) * 32 :])


def test_the_stored_hash_check_passes_a_whole_log_and_hands_on_the_leaves() -> None:
    check = StoredHashCheck()
    assert list(check.leaf_hashes(stored_rows(13))) == leaves(13)
    assert (check.bad, check.missing, check.overlong) == ([], [], [])
    assert check.hashes == stored_hash_count(13)


def test_the_stored_hash_check_names_an_altered_node() -> None:
    rows = stored_rows(13)
    index = stored_hash_index(2, 1)
    altered(rows, index, b"\x00" * 32)
    check = StoredHashCheck()
    list(check.leaf_hashes(rows))
    assert check.bad == [index]


def test_the_stored_hash_check_names_a_missing_node() -> None:
    rows = stored_rows(8)
    rows[1] = (1, rows[1][1][:32])  # leaf 1 without the hash of leaves 0-1
    check = StoredHashCheck()
    list(check.leaf_hashes(rows))
    assert check.missing == [stored_hash_index(1, 0)] and check.bad == []


def test_the_stored_hash_check_names_hashes_longer_than_their_leaf_wrote() -> None:
    rows = stored_rows(8)
    rows[4] = (4, rows[4][1] + b"\x00" * 32)
    check = StoredHashCheck()
    list(check.leaf_hashes(rows))
    assert (check.overlong, check.bad, check.missing) == ([4], [], [])


@given(st.integers(min_value=2, max_value=40), st.data())
def test_a_removed_row_is_one_removed_leaf_wherever_it_is(n: int, data: st.DataObject) -> None:
    """A leaf row deleted, and perhaps the rows after it renumbered to close the gap (its
    hashes go with it either way): the check hands on a gap where it was, so the
    alignment names that one leaf, and no stored hash is blamed. A renumbering shows from
    the hash counts only given a few rows after the gap; closer to the end it is wrong
    hashes, not a removal. (The last row gone leaves no gap: the signed tree head names
    it, ``test_ledger_audit_tampering``.)"""
    gone = data.draw(st.integers(min_value=0, max_value=n - 2))
    renumber = data.draw(st.booleans()) and n - 1 - gone >= 4
    rows = stored_rows(n)
    del rows[gone]
    if renumber:
        rows = [(i, value) for i, (_, value) in enumerate(rows)]
    check = StoredHashCheck()
    stored = list(check.leaf_hashes(rows))
    want = recomputed(leaves(n))
    del want[gone]
    assert kinds(align_leaves(want, stored)) == [("removed", gone, None)]
    assert (check.bad, check.missing, check.overlong) == ([], [], [])


def test_entry_values_are_the_canonical_strings_with_an_integer_version() -> None:
    parsed = parse_event(event(owner_phone=None, occurred_at="2025-02-20T10:30:00+08:00"))
    fields = entry_fields(parsed.canonical())
    assert fields["version"] == 1 and fields["premium"] == "950.00"
    assert fields["occurred_at"] == "2025-02-20T02:30:00+00:00"
    assert "owner_phone" not in fields and "prior_policy_no" not in fields


def test_salts_survive_their_sealed_form() -> None:
    salts = {"plate": "aa" * 16, "vin": "bb" * 16, "owner_phone": "cc" * 16}
    assert salts_from_plain(salts_plain(salts)) == salts


@pytest.mark.parametrize("phone", ["13912345678", None])
def test_an_entry_is_the_rfc8785_bytes_and_rebuilds_from_its_salts(phone: str | None) -> None:
    builder = EntryBuilder(canonical_json)
    canonical = parse_event(event(owner_phone=phone)).canonical()
    built = builder.build(canonical)
    assert built.entry == rfc8785.dumps(json.loads(built.entry))
    assert built.leaf_hash == leaf_hash(built.entry)
    assert builder.rebuild(canonical, built.salts) == built
    assert builder.build(canonical).entry != built.entry  # fresh salts each time
    # The one-pass builder is the ledger's general, checked rebuild_entry, field for field.
    general = committed_entry(canonical, built.salts)
    assert general.entry == json.loads(built.entry) and general.salts == built.salts


def test_a_chunks_entries_are_each_built_as_one_is_with_fresh_salts() -> None:
    """``build_many`` (ingest's path: one CSPRNG read a chunk, the salts' plain text cut
    from the pool's hex) makes, event by event, what ``rebuild`` makes from its salts, and
    the plain text is the sealed form's (``salts_plain``), an absent phone's slot empty."""
    builder = EntryBuilder(canonical_json)
    canonicals = [
        parse_event(
            event(policy_no=f"P-{i}", owner_phone=None if i % 3 else "13912345678")
        ).canonical()
        for i in range(7)
    ]
    built = builder.build_many(canonicals)
    assert len(built) == len(canonicals)
    seen: set[str] = set()
    for position, canonical in enumerate(canonicals):
        one = built[position]
        assert one.salts_plain == salts_plain(one.salts)
        assert ("owner_phone" in one.salts) == (
            canonical[EVENT_FIELDS.index("owner_phone")] is not None
        )
        assert builder.rebuild(canonical, one.salts) == one
        assert one.entry == rfc8785.dumps(json.loads(one.entry))
        assert one.leaf_hash == leaf_hash(one.entry)
        general = committed_entry(canonical, one.salts)
        assert general.entry == json.loads(one.entry)
        seen.update(one.salts.values())
    assert len(seen) == sum(len(built[i].salts) for i in range(len(canonicals)))  # all fresh
    assert len(builder.build_many([])) == 0
