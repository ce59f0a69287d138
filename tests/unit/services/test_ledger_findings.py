"""The audit's pure comparisons and the entry's values (services/ledger_findings.py,
services/ledger_entries.py): one finding per tampering, wherever it happens."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.policy import parse_event
from ctplhub.ledger import CompactRange, StoredHash, leaf_hash, stored_hash_index
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


def stored_table(n: int) -> list[StoredHash]:
    return list(CompactRange().iter_append(leaves(n)))


def test_the_stored_hash_check_passes_a_whole_table_and_hands_on_the_leaves() -> None:
    check = StoredHashCheck()
    assert list(check.leaf_hashes(stored_table(13))) == leaves(13)
    assert (check.bad, check.missing, check.rows) == ([], [], len(stored_table(13)))


def test_the_stored_hash_check_names_an_altered_node() -> None:
    table = stored_table(13)
    index = stored_hash_index(2, 1)
    table[index] = StoredHash(index, b"\x00" * 32)
    check = StoredHashCheck()
    list(check.leaf_hashes(table))
    assert check.bad == [index]


def test_the_stored_hash_check_names_a_missing_node() -> None:
    table = stored_table(8)
    index = stored_hash_index(1, 0)
    del table[index]
    check = StoredHashCheck()
    list(check.leaf_hashes(table))
    assert check.missing == [index] and check.bad == []


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
