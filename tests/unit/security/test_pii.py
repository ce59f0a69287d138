import os

import pytest

from ctplhub.security.pii import BlindIndex, DecryptionFailed, FieldCipher

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
AAD = b"owners.name:42"


def _cipher(active: str = "pii-20261125-aaaaaaaa") -> FieldCipher:
    return FieldCipher({"pii-20261125-aaaaaaaa": KEY_A, "pii-20270101-bbbbbbbb": KEY_B}, active)


def test_round_trip_ascii_and_chinese() -> None:
    cipher = _cipher()
    for text in ["", "13800138000", "张三丰", "欧阳·娜娜 👩"]:
        assert cipher.decrypt(cipher.encrypt(text, aad=AAD), aad=AAD) == text


def test_blob_layout() -> None:
    blob = _cipher().encrypt("张三", aad=AAD)
    kid = b"pii-20261125-aaaaaaaa"
    assert blob[0] == 1
    assert blob[1] == len(kid)
    assert blob[2 : 2 + len(kid)] == kid
    assert len(blob) == 2 + len(kid) + 12 + len("张三".encode()) + 16
    assert FieldCipher.key_id_of(blob) == kid.decode()


def test_two_encryptions_differ() -> None:
    cipher = _cipher()
    assert cipher.encrypt("张三", aad=AAD) != cipher.encrypt("张三", aad=AAD)


def test_every_flipped_byte_is_detected() -> None:
    cipher = _cipher()
    blob = cipher.encrypt("110101199003077777", aad=AAD)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bytes(tampered), aad=AAD)


def test_truncated_and_garbage_blobs_fail() -> None:
    cipher = _cipher()
    blob = cipher.encrypt("张三", aad=AAD)
    for bad in [b"", b"\x01", blob[:-1], blob[:20], b"\x02" + blob[1:], os.urandom(40)]:
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bad, aad=AAD)


def test_wrong_aad_fails() -> None:
    cipher = _cipher()
    blob = cipher.encrypt("张三", aad=b"owners.name:42")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob, aad=b"owners.name:43")


def test_unknown_kid_fails() -> None:
    blob = _cipher().encrypt("张三", aad=AAD)
    other = FieldCipher({"pii-20270101-bbbbbbbb": KEY_B}, "pii-20270101-bbbbbbbb")
    with pytest.raises(DecryptionFailed, match="unknown key"):
        other.decrypt(blob, aad=AAD)


def test_rotation_old_blobs_still_decrypt() -> None:
    old_blob = _cipher("pii-20261125-aaaaaaaa").encrypt("张三", aad=AAD)
    rotated = _cipher("pii-20270101-bbbbbbbb")
    new_blob = rotated.encrypt("李四", aad=AAD)
    assert FieldCipher.key_id_of(new_blob) == "pii-20270101-bbbbbbbb"
    assert rotated.decrypt(old_blob, aad=AAD) == "张三"
    assert rotated.decrypt(new_blob, aad=AAD) == "李四"


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError):
        FieldCipher({"a": KEY_A}, "b")
    with pytest.raises(ValueError):
        FieldCipher({"a": b"short"}, "a")


def test_blind_index_is_deterministic_and_key_dependent() -> None:
    index = BlindIndex(KEY_A)
    value = "11010119900307777X"
    assert index.compute(value) == BlindIndex(KEY_A).compute(value)
    assert len(index.compute(value)) == 32
    assert index.compute(value) != BlindIndex(KEY_B).compute(value)
    assert index.compute(value) != index.compute("110101199003077771")


def test_many_sealed_at_once_open_one_by_one_each_under_its_own_data() -> None:
    """``encrypt_many`` (a chunk's salts): the blobs of ``encrypt``, each bound to its own
    associated data, every nonce distinct."""
    cipher = _cipher()
    texts = ["", "13800138000", "张三丰", "欧阳·娜娜 👩"]
    aads = [b"row:%d" % i for i in range(len(texts))]
    blobs = cipher.encrypt_many(texts, aads)
    assert [cipher.decrypt(blob, aad=aad) for blob, aad in zip(blobs, aads, strict=True)] == texts
    kid = b"pii-20261125-aaaaaaaa"
    assert len({blob[2 + len(kid) : 2 + len(kid) + 12] for blob in blobs}) == len(blobs)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blobs[0], aad=aads[1])
    with pytest.raises(ValueError):
        cipher.encrypt_many(texts, aads[:-1])
    assert cipher.encrypt_many([], []) == []
