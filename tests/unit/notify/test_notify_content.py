"""The templates: both languages, every kind, the unsubscribe link always there."""

from __future__ import annotations

import pytest

from ctplhub.notify.content import UnknownKind, family_of, render_email, render_short
from notify_fixtures import outbox_message

KINDS = [
    "before_30d",
    "before_7d",
    "before_1d",
    "lapsed_1d",
    "cancelled",
    "dispute_opened",
    "dispute_resolved",
    "dispute_escalated",
]
URL = "http://127.0.0.1:8000/v1/subscriptions/7/unsubscribe?token=a&b=<x>"


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_message_carries_the_unsubscribe_link(language: str, kind: str) -> None:
    message = outbox_message(language=language, kind=kind, unsubscribe_url=URL, dispute_id=42)
    email = render_email(message)
    assert URL in email.text
    assert "http://127.0.0.1:8000/v1/subscriptions/7/unsubscribe?token=a&amp;b=&lt;x&gt;" in (
        email.html
    )  # escaped in HTML, and only there
    assert URL in render_short(message)
    for text in (email.subject, email.text, email.html, render_short(message)):
        assert "苏E·12345" in text


def test_chinese_is_the_default_and_dates_are_in_beijing_time() -> None:
    message = outbox_message(language="fr")  # unknown: Chinese
    email = render_email(message)
    assert email.subject == "【交强险续保提醒】苏E·12345 的交强险将在 30 天后到期"
    # covered_until is 2026-12-31T16:00Z = 2027-01-01 00:00 in Beijing
    assert "2027-01-01 00:00（北京时间）" in email.text
    assert "中国人民财产保险" in email.text and "…0001" in email.text


def test_english_wording_per_kind() -> None:
    def subject(kind: str) -> str:
        return render_email(outbox_message(language="en", kind=kind)).subject

    assert subject("before_1d") == "CTPL renewal reminder: cover of 苏E·12345 ends in 1 day"
    assert subject("before_7d").endswith("ends in 7 days")
    assert subject("lapsed_1d").startswith("CTPL lapsed:")
    assert subject("cancelled") == "CTPL alert: a policy on 苏E·12345 was surrendered or cancelled"
    text = render_email(outbox_message(language="en", kind="cancelled")).text
    assert "ghost" in text


def test_html_escapes_what_it_shows() -> None:
    email = render_email(outbox_message(insurer_name="<b>Acme</b> & Co"))
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; Co" in email.html
    assert "<b>Acme</b> & Co" in email.text  # plain text is not HTML


def test_the_short_text_fits_a_few_sms_segments() -> None:
    for kind in KINDS:
        for language in ("zh-CN", "en"):
            message = outbox_message(
                kind=kind, language=language, unsubscribe_url="https://x.cn/u", dispute_id=42
            )
            limit = 200 if language == "en" else 140  # letters are narrower than 汉字
            assert len(render_short(message)) < limit, (kind, language)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_dispute_s_notices_name_it_and_its_outcome(language: str) -> None:
    def email(kind: str, outcome: str | None = None) -> str:
        message = outbox_message(
            language=language, kind=kind, rule_days=0, dispute_id=42, dispute_outcome=outcome
        )
        rendered = render_email(message)
        return rendered.subject + rendered.text

    opened = email("dispute_opened")
    assert "42" in opened and "2027-01-01 00:00" in opened  # covered_until: its due_at
    corrected, rejected = (
        email("dispute_resolved", "corrected"),
        email("dispute_resolved", "rejected"),
    )
    if language == "en":
        assert "corrected" in corrected and "did not change" in rejected
        assert "regulator" in email("dispute_escalated")
    else:
        assert "已更正数据" in corrected and "未予更正" in rejected
        assert "监管部门" in email("dispute_escalated")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("before_30d", ("before", 30)),
        ("lapsed_2d", ("lapsed", 2)),
        ("cancelled", ("cancelled", 0)),
        ("dispute_resolved", ("dispute_resolved", 0)),
    ],
)
def test_kinds(kind: str, expected: tuple[str, int]) -> None:
    assert family_of(kind) == expected


@pytest.mark.parametrize("kind", ["before_d", "before_x1d", "soon", "lapsed_١d", "before_99999d"])
def test_a_kind_no_template_words_is_refused(kind: str) -> None:
    with pytest.raises(UnknownKind):
        family_of(kind)
