"""Envelope keys and the blind-index ring, with an in-memory ``data_keys`` table."""

from __future__ import annotations

import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctplhub.security.envelope import Keyring, unwrap, wrap
from ctplhub.security.keystore import (
    MASTER_KEYS_FILE,
    KeysMissing,
    add_master_key,
    ensure_keys,
    load_keys,
)
from ctplhub.security.pii import BlindIndexRing, FieldCipher
from ctplhub.services.key_ports import ACTIVE, BLIND, FIELD, RETIRING, WrappedDataKey

LEGACY_KID = "pii-20261125-aaaaaaaa"
MASTER_KID = "mk-20261201-00000001"
MASTER = secrets.token_bytes(32)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ID = "11010519491231002X"
LEGACY_KEY, LEGACY_BLIND = secrets.token_bytes(32), secrets.token_bytes(32)  # the key files


def _key(kid: str, purpose: str, seq: int, state: str = ACTIVE) -> WrappedDataKey:
    wrapped = wrap(MASTER, kid, purpose, seq, secrets.token_bytes(32))
    return WrappedDataKey(kid, purpose, seq, wrapped, MASTER_KID, state, NOW)


def _ring(table: list[WrappedDataKey], refresh_s: float = 60.0) -> Keyring:
    return Keyring(
        legacy_keys={LEGACY_KID: LEGACY_KEY},
        legacy_active_kid=LEGACY_KID,
        legacy_blind_key=LEGACY_BLIND,
        master_keys={MASTER_KID: MASTER},
        active_master_kid=MASTER_KID,
        load=lambda: list(table),
        refresh_s=refresh_s,
    )


def test_wrapped_keys_are_bound_to_their_row() -> None:
    key = secrets.token_bytes(32)
    wrapped = wrap(MASTER, "dk-1", FIELD, 1, key)
    assert unwrap(MASTER, "dk-1", FIELD, 1, wrapped) == key
    for kid, purpose, seq in (("dk-2", FIELD, 1), ("dk-1", BLIND, 1), ("dk-1", FIELD, 2)):
        with pytest.raises(KeysMissing):
            unwrap(MASTER, kid, purpose, seq, wrapped)
    with pytest.raises(KeysMissing):
        unwrap(secrets.token_bytes(32), "dk-1", FIELD, 1, wrapped)


def test_blind_indexes_name_their_key() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    before = BlindIndexRing({None: old}, None)
    during = BlindIndexRing({None: old, 7: new}, 7)
    legacy, current = before.compute(ID), during.compute(ID)

    assert len(legacy) == 32 and len(current) == 33 and current[0] == 7
    assert BlindIndexRing.key_of(legacy) is None and BlindIndexRing.key_of(current) == 7
    assert during.matches(legacy, ID) is True and during.matches(current, ID) is True
    assert during.matches(current, "110105194912310029") is False
    assert before.matches(current, ID) is None  # a key this ring does not know yet
    assert during.matches(b"\x07" + b"\x00" * 32, ID) is False
    assert during.matches(b"short", ID) is False
    assert during.matches(b"\x00" + current[1:], ID) is False  # key byte 0 is never made
    with pytest.raises(ValueError):
        BlindIndexRing({0: new}, 0)


def test_without_data_keys_the_key_files_stay_active() -> None:
    ring = _ring([])
    blob = ring.encrypt("张伟", aad=b"a")
    assert FieldCipher.key_id_of(blob) == LEGACY_KID
    assert len(ring.blind_index(ID)) == 32
    assert ring.markers().field_header == FieldCipher.header_of(LEGACY_KID)


def test_readers_learn_a_new_key_from_the_data_itself() -> None:
    table: list[WrappedDataKey] = []
    server = _ring(table)  # will not refresh on its own for a minute
    legacy_blob = server.encrypt("张伟", aad=b"a")
    legacy_index = server.blind_index(ID)
    table += [_key("dk-1", FIELD, 1), _key("bk-1", BLIND, 1)]
    rotator = _ring(table)

    blob, index = rotator.encrypt("李娜", aad=b"b"), rotator.blind_index(ID)

    assert FieldCipher.key_id_of(blob) == "dk-1" and index[0] == 1
    assert server.decrypt(blob, aad=b"b") == "李娜"  # unknown kid: re-read, then decrypt
    assert server.blind_index_matches(index, ID)
    assert server.blind_index_matches(legacy_index, ID)
    assert rotator.decrypt(legacy_blob, aad=b"a") == "张伟"


def test_writers_move_to_the_active_key_on_refresh() -> None:
    table = [_key("dk-1", FIELD, 1), _key("bk-1", BLIND, 1)]
    writer = _ring(table, refresh_s=0.0)
    assert FieldCipher.key_id_of(writer.encrypt("x", aad=b"")) == "dk-1"
    table[:] = [
        _key("dk-1", FIELD, 1, RETIRING),
        _key("bk-1", BLIND, 1, RETIRING),
        _key("dk-2", FIELD, 2),
        _key("bk-2", BLIND, 2),
    ]
    assert writer.blind_index(ID)[0] == 2  # the refresh happens here
    assert FieldCipher.key_id_of(writer.encrypt("x", aad=b"")) == "dk-2"


def test_a_data_key_under_an_unknown_master_is_refused_at_start() -> None:
    stray = WrappedDataKey("dk-9", FIELD, 9, b"\x00" * 60, "mk-gone", ACTIVE, NOW)
    with pytest.raises(KeysMissing, match="mk-gone"):
        _ring([stray])


def test_master_keys_are_added_never_dropped(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    first = load_keys(tmp_path)
    assert first.active_master_kid in first.master_keys

    added = add_master_key(tmp_path)

    second = load_keys(tmp_path)
    assert second.active_master_kid == added != first.active_master_kid
    assert second.master_keys[first.active_master_kid] == first.master_keys[first.active_master_kid]
    assert stat.S_IMODE((tmp_path / "keys" / MASTER_KEYS_FILE).stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "keys").iterdir() if p.name.startswith(".")) == []


def test_a_home_without_a_master_key_still_loads(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    (tmp_path / "keys" / MASTER_KEYS_FILE).unlink()  # made by an older `ctplhub init`
    keys = load_keys(tmp_path)
    assert keys.master_keys == {} and keys.active_master_kid is None
    assert ensure_keys(tmp_path) == [MASTER_KEYS_FILE]
