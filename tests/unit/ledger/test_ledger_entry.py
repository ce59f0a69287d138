"""The committed entry of an event (DESIGN §6) and the tree head's shape: no plate, VIN
or personal value reaches the public entry, salts reproduce it exactly, and every event
field is deliberately either committed or clear."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.policy import EVENT_FIELDS
from ctplhub.ledger import (
    CLEAR_FIELDS,
    COMMITTED_FIELDS,
    TreeHead,
    build_entry,
    commitment,
    random_salt,
    rebuild_entry,
)

FIELDS: dict[str, str | int | None] = {
    "insurer_code": "PICC",
    "policy_no": "PDZA2025320500001",
    "event_type": "issue",
    "version": 1,
    "occurred_at": "2025-02-27T02:00:00+00:00",
    "plate": "苏E12345",
    "vin": "LSVAU2180N2183294",
    "vehicle_type": "passenger_small",
    "use_nature": "family",
    "owner_name": "张三",
    "owner_id_type": "resident_id",
    "owner_id_number": "320505199001011234",
    "owner_phone": None,
    "coverage_start": "2025-02-28T16:00:00+00:00",
    "coverage_end": "2026-02-28T16:00:00+00:00",
    "premium": "950.00",
    "region_code": "320505",
    "prior_policy_no": None,
    "effective_at": None,
}


def counting_salts() -> Iterator[bytes]:
    n = 0
    while True:
        yield n.to_bytes(16, "big")
        n += 1


def test_every_event_field_is_either_committed_or_clear() -> None:
    assert set(COMMITTED_FIELDS).isdisjoint(CLEAR_FIELDS)
    assert set(COMMITTED_FIELDS) | set(CLEAR_FIELDS) == set(EVENT_FIELDS)


def test_personal_fields_become_salted_commitments() -> None:
    salts = counting_salts()
    built = build_entry(FIELDS, salt_source=lambda: next(salts))
    present_committed = [f for f in COMMITTED_FIELDS if FIELDS[f] is not None]
    assert sorted(built.salts) == sorted(present_committed)
    for name in present_committed:
        salt = bytes.fromhex(built.salts[name])
        value = FIELDS[name]
        assert isinstance(value, str)
        assert built.entry[name] == hashlib.sha256(salt + value.encode()).hexdigest()
        assert built.entry[name] == commitment(salt, value)
    for name in CLEAR_FIELDS:
        if FIELDS[name] is not None:
            assert built.entry[name] == FIELDS[name]
    # Absent fields are left out, neither committed nor null.
    assert "owner_phone" not in built.entry and "prior_policy_no" not in built.entry
    # Nothing personal survives anywhere in the entry.
    text = repr(built.entry)
    for secret in ("苏E12345", "LSVAU2180N2183294", "183294", "张三", "320505199001011234"):
        assert secret not in text


def test_each_field_gets_its_own_fresh_salt() -> None:
    one = build_entry(FIELDS, salt_source=random_salt)
    two = build_entry(FIELDS, salt_source=random_salt)
    assert len(set(one.salts.values())) == len(one.salts)
    assert one.entry["plate"] != two.entry["plate"]  # equal plates are unlinkable
    assert all(len(bytes.fromhex(s)) == 16 for s in one.salts.values())


@given(st.text(min_size=1, max_size=30), st.binary(min_size=16, max_size=16))
def test_the_salts_rebuild_the_same_entry(name: str, salt: bytes) -> None:
    fields = {**FIELDS, "owner_name": name}
    built = build_entry(fields, salt_source=lambda: salt)
    assert rebuild_entry(fields, built.salts) == built


def test_mismatched_salts_unknown_fields_and_bad_values_are_refused() -> None:
    built = build_entry(FIELDS, salt_source=random_salt)
    with pytest.raises(ValueError, match="salts"):
        rebuild_entry(FIELDS, {**built.salts, "owner_phone": "00" * 16})
    with pytest.raises(ValueError, match="salts"):
        rebuild_entry(FIELDS, {k: v for k, v in built.salts.items() if k != "vin"})
    with pytest.raises(ValueError, match="16 bytes"):
        rebuild_entry(FIELDS, {**built.salts, "vin": "00" * 8})
    with pytest.raises(ValueError, match="favourite_colour"):
        build_entry({**FIELDS, "favourite_colour": "red"}, salt_source=random_salt)
    with pytest.raises(ValueError, match="16 bytes"):
        build_entry(FIELDS, salt_source=lambda: b"short")
    with pytest.raises(TypeError):
        build_entry({**FIELDS, "version": 1.5}, salt_source=random_salt)  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        build_entry({**FIELDS, "vin": 12345}, salt_source=random_salt)


def test_tree_head_shape() -> None:
    head = TreeHead(tree_size=3, root_hash=bytes(range(32)), timestamp=1_764_036_000_000)
    signable = head.to_signable()
    assert signable == {
        "tree_size": 3,
        "root_hash": bytes(range(32)).hex(),
        "timestamp": 1_764_036_000_000,
    }
    assert TreeHead.from_signable({**signable, "signature": {"alg": "Ed25519"}}) == head


@pytest.mark.parametrize(
    "bad",
    [
        {"tree_size": -1},
        {"tree_size": True},
        {"root_hash": "AB" * 32},
        {"root_hash": "ab" * 31},
        {"timestamp": 1.5},
        {"timestamp": None},
    ],
)
def test_tree_head_refuses_malformed_fields(bad: dict[str, object]) -> None:
    good = TreeHead(3, bytes(32), 0).to_signable()
    with pytest.raises(ValueError):
        TreeHead.from_signable({**good, **bad})


def test_tree_head_checks_itself() -> None:
    with pytest.raises(ValueError):
        TreeHead(1, b"short", 0)
    with pytest.raises(ValueError):
        TreeHead(1, bytes(32), -5)
