"""The webhook signature (docs/webhooks.md), checked against an independent write-up."""

from __future__ import annotations

import hashlib
import hmac

from ctplhub.notify import webhook_signing as ws
from ctplhub.notify.webhook import webhook_body
from notify_fixtures import outbox_message

SECRET = "0f" * 32
BODY = '{"id":"41","plate":"苏E·12345"}'.encode()


def test_signature_is_hmac_of_timestamp_id_and_body() -> None:
    # Written out from docs/webhooks.md without the module.
    expected = hmac.new(SECRET.encode(), b"1764036000.41." + BODY, hashlib.sha256).hexdigest()
    assert ws.signature(SECRET, "1764036000", "41", BODY) == f"v1={expected}"


def test_headers_verify_and_any_change_breaks_them() -> None:
    headers = ws.signed_headers(SECRET, "41", BODY, now_s=1_764_036_000.7)
    assert headers[ws.HEADER_MESSAGE_ID] == "41"
    assert headers[ws.HEADER_TIMESTAMP] == "1764036000"

    def check(**change: object) -> bool:
        args: dict[str, object] = {
            "timestamp": headers[ws.HEADER_TIMESTAMP],
            "message_id": "41",
            "body": BODY,
            "header": headers[ws.HEADER_SIGNATURE],
            "now_s": 1_764_036_100,
        }
        args.update(change)
        return ws.verify(SECRET, **args)  # type: ignore[arg-type]

    assert check()
    assert not check(body=BODY + b" ")
    assert not check(message_id="42")  # a replay under a new id is not accepted
    assert not check(timestamp="1764036001")
    assert not check(now_s=1_764_036_000 + 301)  # stale
    assert not check(timestamp="+1764036000")
    assert not check(header="v1=" + "0" * 64)
    assert not check(header="v1=é")  # no exception on a hostile header
    assert check(header="v2=abc, " + headers[ws.HEADER_SIGNATURE])  # a future scheme beside


def test_each_subscription_has_its_own_secret() -> None:
    key = bytes(range(32))
    a, b = ws.webhook_secret(key, 1), ws.webhook_secret(key, 2)
    assert a != b and len(a) == 64 and int(a, 16) >= 0
    assert a == ws.webhook_secret(key, 1)
    assert a != ws.webhook_secret(bytes(32), 1)


def test_the_body_is_the_same_bytes_on_every_try() -> None:
    first = webhook_body(outbox_message(channel="webhook", attempts=1))
    again = webhook_body(outbox_message(channel="webhook", attempts=3))
    assert first == again
    assert b'"id":"41"' in first and "苏E·12345".encode() in first
    assert b'"covered_until":"2027-01-01T00:00:00+08:00"' in first
