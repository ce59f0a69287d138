"""The words of a reminder: Jinja2 templates in Chinese (the default) and English.

One folder per language under ``notify/templates/`` (shipped as package data), each with
``subject.txt``, ``body.txt`` and ``body.html`` (e-mail) and ``sms.txt`` (SMS, and the
``text`` of a webhook). Every template gets the same :class:`NoticeView`, whose
``unsubscribe_url`` each of them shows: every message carries the way out (issue 9).

A message's ``kind`` picks the wording: ``before_<n>d`` (cover ends in n days),
``lapsed_<n>d`` (cover ended n days ago) or ``cancelled`` (a policy on the vehicle was
surrendered or cancelled soon after issue: possible "ghost" cover), or a dispute's step
(``dispute_opened``, ``dispute_resolved``, ``dispute_escalated``: DESIGN §10, the
family is the kind itself). Times are shown in Beijing time, as every answer of the
registry is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from ctplhub.domain.instants import BEIJING
from ctplhub.services.reminder_ports import DISPUTE_KINDS, KIND_CANCELLED, OutboxMessage

DEFAULT_LANGUAGE = "zh-CN"
LANGUAGES = ("zh-CN", "en")
FAMILIES = ("before", "lapsed", "cancelled", *DISPUTE_KINDS)


class UnknownKind(ValueError):
    """A ``kind`` no template words: sending a wrong text would be worse than none."""


@dataclass(frozen=True, slots=True)
class NoticeView:
    """What the templates see: display values only, already masked where they must be."""

    family: str  # "before" | "lapsed" | "cancelled" | "dispute_opened" | ...
    days: int
    plate: str
    vin_masked: str
    insurer_name: str
    insurer_code: str
    policy_no_masked: str
    covered_until: datetime  # Beijing time
    date_text: str  # "2026-12-31 00:00"; a dispute's notices: its due_at
    unsubscribe_url: str
    dispute_id: int | None = None
    outcome: str = ""  # a resolved dispute's: "corrected" | "rejected"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def family_of(kind: str) -> tuple[str, int]:
    """``("before", 30)`` for ``before_30d`` (and ``early_risk_30d``); raises
    :class:`UnknownKind` otherwise."""
    if kind == KIND_CANCELLED:
        return "cancelled", 0
    if kind in DISPUTE_KINDS:
        return kind, 0
    # The early reminder of a high-risk vehicle (``early_risk_45d``) words like ``before``.
    prefixes = (("before", "before_"), ("lapsed", "lapsed_"), ("before", "early_risk_"))
    for family, prefix in prefixes:
        if kind.startswith(prefix) and kind.endswith("d"):
            days = kind[len(prefix) : -1]
            if days.isascii() and days.isdigit() and len(days) <= 4:
                return family, int(days)
    raise UnknownKind(f"no template words reminder kind {kind[:40]!r}")


def language_of(message: OutboxMessage) -> str:
    return message.language if message.language in LANGUAGES else DEFAULT_LANGUAGE


def view_of(message: OutboxMessage) -> NoticeView:
    family, days = family_of(message.kind)
    local = message.covered_until.astimezone(BEIJING)
    return NoticeView(
        family=family,
        days=days,
        plate=message.plate,
        vin_masked=message.vin_masked,
        insurer_name=message.insurer_name,
        insurer_code=message.insurer_code,
        policy_no_masked=message.policy_no_masked,
        covered_until=local,
        date_text=local.strftime("%Y-%m-%d %H:%M"),
        unsubscribe_url=message.unsubscribe_url,
        dispute_id=message.dispute_id,
        outcome=message.dispute_outcome or "",
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("ctplhub.notify", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,  # a misspelt field fails the test, not the owner
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=64)
def _template(language: str, name: str) -> Template:
    return _environment().get_template(f"{language}/{name}")


def render_email(message: OutboxMessage) -> Rendered:
    """Subject, plain text and HTML of the e-mail for ``message``."""
    view, language = view_of(message), language_of(message)
    return Rendered(
        subject=" ".join(_template(language, "subject.txt").render(n=view).split()),
        text=_template(language, "body.txt").render(n=view).strip() + "\n",
        html=_template(language, "body.html").render(n=view),
    )


def render_short(message: OutboxMessage) -> str:
    """The short text of an SMS (and the ``text`` of a webhook body)."""
    view = view_of(message)
    return " ".join(_template(language_of(message), "sms.txt").render(n=view).split())
