"""``ctplhub keys rotate-signing``'s key-file half (``keystore.add_signing_key``): a new
active kid, the old keys kept, so old signatures verify by kid against the new JWKS and
new answers name the new kid. Also the checked off-loop signing of bulk answers."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from ctplhub.security.answer_signing import AnswerSigner, verify_signed
from ctplhub.security.keystore import (
    SIGNING_KEYS_FILE,
    PublishedSigningKeys,
    add_signing_key,
    ensure_keys,
    load_keys,
)

ANSWER = {"answer_id": "a-1", "plate": "苏E·12345", "covered": True}


def signer_of(home: Path) -> AnswerSigner:
    keys = load_keys(home)
    return AnswerSigner(keys.signing_keys, keys.active_signing_kid)


def test_sign_rotate_old_signature_verifies_and_new_answers_use_the_new_kid(
    tmp_path: Path,
) -> None:
    ensure_keys(tmp_path)
    before = signer_of(tmp_path)
    old_answer = before.sign(ANSWER)

    new_kid, previous = add_signing_key(tmp_path)

    after = signer_of(tmp_path)  # what a server builds when it (re)starts
    assert previous == before.active_kid != new_kid
    assert after.active_kid == new_kid
    jwks = after.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {previous, new_kid}
    assert verify_signed(old_answer, jwks)
    assert old_answer["signature"]["kid"] == previous
    new_answer = after.sign(ANSWER)
    assert new_answer["signature"]["kid"] == new_kid
    assert verify_signed(new_answer, jwks)
    assert not verify_signed(new_answer, before.jwks())  # an old JWKS lacks the new kid


def test_rotating_twice_keeps_every_key_and_the_file_private(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    first, _ = add_signing_key(tmp_path)
    second, previous = add_signing_key(tmp_path)

    path = tmp_path / "keys" / SIGNING_KEYS_FILE
    document = json.loads(path.read_text())
    assert previous == first
    assert document["active"] == second
    assert len(document["keys"]) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    assert ensure_keys(tmp_path) == []  # init never overwrites the rotated file


def test_checked_off_loop_signing_signs_what_jcs_says(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    signer = signer_of(tmp_path)
    # Not plain: a float and a non-ASCII key take the rfc8785 path.
    obj = {"results": [{"plate": "苏E·12345", "ratio": 0.5, "键": None}]}
    try:
        text = asyncio.run(signer.signed_canonical_json_off_loop(obj))
    finally:
        signer.close()
    parsed = json.loads(text)
    assert verify_signed(parsed, signer.jwks())
    assert parsed == signer.sign(obj)


def test_a_running_signer_publishes_a_rotated_key_but_keeps_signing_with_its_own(
    tmp_path: Path,
) -> None:
    ensure_keys(tmp_path)
    keys = load_keys(tmp_path)
    running = AnswerSigner(
        keys.signing_keys, keys.active_signing_kid, published=PublishedSigningKeys(tmp_path)
    )
    assert {k["kid"] for k in running.jwks()["keys"]} == {keys.active_signing_kid}

    new_kid, _ = add_signing_key(tmp_path)

    assert {k["kid"] for k in running.jwks()["keys"]} == {keys.active_signing_kid, new_kid}
    assert running.sign(ANSWER)["signature"]["kid"] == keys.active_signing_kid
    assert verify_signed(signer_of(tmp_path).sign(ANSWER), running.jwks())
    # A key file broken later never takes away the keys already published.
    (tmp_path / "keys" / SIGNING_KEYS_FILE).write_text("{not json")
    assert {k["kid"] for k in running.jwks()["keys"]} == {keys.active_signing_kid, new_kid}
