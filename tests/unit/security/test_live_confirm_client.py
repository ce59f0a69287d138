"""What the platform accepts as an insurer's live-confirmation answer (DESIGN §10)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ctplhub.security.live_confirm_client import confirm_body, parse_reply
from ctplhub.services.live_confirmation import ConfirmAsk, ConfirmFailed


def test_a_reply_needs_a_boolean_covered() -> None:
    reply = parse_reply(
        b'{"covered": true, "policy_no": "P1", "coverage_end": "2027-03-01T00:00:00+08:00"}'
    )
    assert reply.covered is True and reply.policy_no == "P1"
    assert reply.coverage_end == datetime(2027, 2, 28, 16, 0, tzinfo=UTC)
    assert parse_reply(b'{"covered": false}').covered is False
    for bad in (
        b"",
        b"[]",
        b'{"covered": "yes"}',
        b'{"covered": 1}',
        b"{",
        b'{"covered": true, "coverage_end": "x"}',
    ):
        with pytest.raises(ConfirmFailed):
            parse_reply(bad)


def test_the_question_is_plate_vin_and_at_in_beijing_time() -> None:
    ask = ConfirmAsk("苏E·12345", None, datetime(2026, 3, 20, 2, 0, tzinfo=UTC), None)
    assert (
        confirm_body(ask).decode()
        == '{"plate":"苏E·12345","vin":null,"at":"2026-03-20T10:00:00+08:00"}'
    )
