"""The MIME message: multipart text + HTML, unsubscribe headers, a stable Message-ID."""

from __future__ import annotations

import pytest

from ctplhub.notify.channels import DeliveryFailed, http_status_failure
from ctplhub.notify.email import build_email
from notify_fixtures import outbox_message

SENDER = "CTPL Hub <reminders@ctplhub.example>"


def test_multipart_alternative_with_both_languages_bodies() -> None:
    for language in ("zh-CN", "en"):
        message = outbox_message(language=language)
        email = build_email(message, SENDER)
        assert email.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in email.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        text = email.get_body(("plain",))
        html = email.get_body(("html",))
        assert text is not None and html is not None
        assert message.unsubscribe_url in text.get_content()  # type: ignore[attr-defined]
        assert "<a href=" in html.get_content()  # type: ignore[attr-defined]
        assert email["Content-Language"] == language


def test_headers() -> None:
    email = build_email(outbox_message(id=99), SENDER)
    assert email["Message-ID"] == "<reminder-99@ctplhub.example>"
    assert email["X-CTPL-Message-Id"] == "99"
    assert email["List-Unsubscribe"] == f"<{outbox_message().unsubscribe_url}>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Auto-Submitted"] == "auto-generated"
    assert email["To"] == "zhang.wei@example.cn"
    assert "苏E·12345" in str(email["Subject"])


def test_a_message_that_cannot_be_worded_is_a_permanent_failure() -> None:
    with pytest.raises(DeliveryFailed) as raised:
        build_email(outbox_message(kind="whenever"), SENDER)
    assert raised.value.code == "unknown_kind" and not raised.value.retryable


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (404, False), (410, False), (302, False)],
)
def test_http_failures(status: int, retryable: bool) -> None:
    failure = http_status_failure(status)
    assert failure.code == f"http_{status}" and failure.retryable is retryable


def test_failure_codes_are_safe_to_store() -> None:
    with pytest.raises(ValueError):
        DeliveryFailed("Mailbox zhang.wei@example.cn unknown", retryable=False)
