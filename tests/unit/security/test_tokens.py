import hashlib
import re

from ctplhub.security.tokens import hash_token, new_key_id, new_secret, new_token


def test_new_token_has_prefix_and_entropy() -> None:
    token = new_token()
    assert re.fullmatch(r"ctp_[A-Za-z0-9_-]{43}", token)
    assert new_token("pol").startswith("pol_")
    assert new_token() != token


def test_new_secret_is_random_urlsafe() -> None:
    secret = new_secret()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert new_secret() != secret


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("ctp_abc") == hashlib.sha256(b"ctp_abc").hexdigest()
    assert hash_token("ctp_abc") != hash_token("ctp_abd")


def test_new_key_id_names_the_insurer() -> None:
    key_id = new_key_id("PICC")
    assert re.fullmatch(r"PICC-[0-9a-f]{12}", key_id)
    assert new_key_id("PICC") != key_id
