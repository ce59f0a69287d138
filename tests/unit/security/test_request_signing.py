import hashlib
import hmac

import pytest

from ctplhub.security import request_signing as rs

SECRET = "s3cr3t-for-tests"
BODY = '{"plate":"苏E·12345"}'.encode()
NONCE = "abcdefghijklmnop1234"


def _independent_signature() -> str:
    # Written out from DESIGN §5.1 without the module, so both cannot share a mistake.
    body_hash = hashlib.sha256(BODY).hexdigest()
    message = f"POST\n/v1/disputes?status=open\n1764036000\n{NONCE}\n{body_hash}"
    return hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_string_to_sign_layout() -> None:
    got = rs.string_to_sign("post", "/v1/x?a=1", "1764036000", NONCE, b"")
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert got == f"POST\n/v1/x?a=1\n1764036000\n{NONCE}\n{empty_sha}".encode()


def test_sign_matches_known_vector() -> None:
    got = rs.sign(SECRET, "post", "/v1/disputes?status=open", "1764036000", NONCE, BODY)
    assert got == _independent_signature()
    assert got == got.lower() and len(got) == 64


def test_signature_matches_accepts_the_right_signature() -> None:
    sig = _independent_signature()
    args = ("POST", "/v1/disputes?status=open", "1764036000", NONCE, BODY)
    assert rs.signature_matches(SECRET, *args, sig)


@pytest.mark.parametrize(
    ("method", "path", "timestamp", "nonce", "body"),
    [
        ("GET", "/v1/disputes?status=open", "1764036000", NONCE, BODY),
        ("POST", "/v1/disputes?status=closed", "1764036000", NONCE, BODY),
        ("POST", "/v1/disputes", "1764036000", NONCE, BODY),
        ("POST", "/v1/disputes?status=open", "1764036001", NONCE, BODY),
        ("POST", "/v1/disputes?status=open", "1764036000", NONCE + "x", BODY),
        ("POST", "/v1/disputes?status=open", "1764036000", NONCE, BODY + b" "),
    ],
)
def test_signature_matches_rejects_any_changed_part(
    method: str, path: str, timestamp: str, nonce: str, body: bytes
) -> None:
    sig = _independent_signature()
    assert not rs.signature_matches(SECRET, method, path, timestamp, nonce, body, sig)


def test_signature_matches_rejects_wrong_secret_and_garbage() -> None:
    args = ("POST", "/v1/disputes?status=open", "1764036000", NONCE, BODY)
    sig = _independent_signature()
    assert not rs.signature_matches("other", *args, sig)
    assert not rs.signature_matches(SECRET, *args, "")
    assert not rs.signature_matches(SECRET, *args, "签名")
    assert not rs.signature_matches(SECRET, *args, sig.upper())


@pytest.mark.parametrize(
    ("timestamp", "fresh"),
    [
        ("1000000", True),
        ("1000300", True),
        ("999700", True),
        ("1000301", False),
        ("999699", False),
        ("1000000.0", False),
        ("", False),
        ("abc", False),
        (" 1000000", False),
        ("+1000000", False),
        ("1_000_000", False),
        ("１０００００", False),  # full-width digits
    ],
)
def test_timestamp_fresh(timestamp: str, fresh: bool) -> None:
    assert rs.timestamp_fresh(timestamp, 1_000_000.0) is fresh


def test_signed_headers_fixed_inputs() -> None:
    headers = rs.signed_headers(
        "PICC-1a2b3c4d5e6f",
        SECRET,
        "POST",
        "/v1/disputes?status=open",
        BODY,
        now_s=1764036000.9,
        nonce=NONCE,
    )
    assert headers == {
        "X-CTPL-Key": "PICC-1a2b3c4d5e6f",
        "X-CTPL-Timestamp": "1764036000",
        "X-CTPL-Nonce": NONCE,
        "X-CTPL-Signature": _independent_signature(),
    }


def test_signed_headers_defaults_are_fresh_and_random() -> None:
    import time

    first = rs.signed_headers("k", SECRET, "GET", "/v1/x", b"")
    second = rs.signed_headers("k", SECRET, "GET", "/v1/x", b"")
    assert rs.timestamp_fresh(first[rs.HEADER_TIMESTAMP], time.time())
    assert len(first[rs.HEADER_NONCE]) >= rs.MIN_NONCE_LEN
    assert first[rs.HEADER_NONCE] != second[rs.HEADER_NONCE]
    assert rs.signature_matches(
        SECRET,
        "GET",
        "/v1/x",
        first[rs.HEADER_TIMESTAMP],
        first[rs.HEADER_NONCE],
        b"",
        first[rs.HEADER_SIGNATURE],
    )


def test_constants() -> None:
    assert (rs.HEADER_KEY, rs.HEADER_TIMESTAMP, rs.HEADER_NONCE, rs.HEADER_SIGNATURE) == (
        "X-CTPL-Key",
        "X-CTPL-Timestamp",
        "X-CTPL-Nonce",
        "X-CTPL-Signature",
    )
    assert rs.MAX_SKEW_S == 300
    assert rs.MIN_NONCE_LEN == 16
