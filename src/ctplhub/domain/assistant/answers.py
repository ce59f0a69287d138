"""The assistant's answer, written from templates (``phrases``) and, for a vehicle
question, from the facts of the verified coverage answer (DESIGN §3.1).

Instants are shown as people read them in Beijing time (``2027年3月1日 00:00`` /
``2027-03-01 00:00``); ``covered_until`` is the half-open end of the cover, so a policy
"to 2027-02-28 二十四时" reads as covered until 2027-03-01 00:00, exactly as signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ctplhub.domain.assistant.intents import Intent
from ctplhub.domain.assistant.language import Language
from ctplhub.domain.assistant.phrases import OR, PHRASES, PROVINCE_NAMES_EN, PROVINCE_NAMES_ZH
from ctplhub.domain.assistant.plates import AMBIGUOUS_PINYIN
from ctplhub.domain.instants import BEIJING

_PINYIN_EXAMPLE = "苏E12345"


@dataclass(frozen=True, slots=True)
class CoverageFacts:
    """What an answer about a vehicle says, taken from its verified coverage answer."""

    plate: str  # display form, 苏E·12345
    status: str  # CoverageStatus value
    covered_until: datetime | None
    days_to_expiry: int | None
    lapsed_since: datetime | None
    days_lapsed: int | None
    insurer: str | None  # the current policy's insurer, by name when known
    policy_no_masked: str | None
    next_insurer: str | None
    next_start: datetime | None
    caveated: bool


def when(value: datetime | None, language: Language) -> str:
    if value is None:
        return "—"
    at = value.astimezone(BEIJING)
    if language == "zh":
        return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"
    return f"{at:%Y-%m-%d %H:%M}"


def _say(language: Language, key: str, **fields: object) -> str:
    return PHRASES[language][key].format(**fields)


def ask_for_plate(language: Language, ambiguous: str = "") -> str:
    """The answer when a vehicle question names no plate we could read."""
    if not ambiguous:
        return _say(language, "need_plate")
    names = PROVINCE_NAMES_ZH if language == "zh" else PROVINCE_NAMES_EN
    options = OR[language].join(names.get(p, p) for p in ambiguous)
    syllable = next((s for s, p in AMBIGUOUS_PINYIN.items() if p == ambiguous), ambiguous)
    return _say(
        language,
        "need_plate_ambiguous",
        syllable=syllable.lower(),
        options=options,
        example=ambiguous[0] + _PINYIN_EXAMPLE[1:],
    )


def ask_for_factor(language: Language, intent: Intent, plate: str) -> str:
    topic = PHRASES[language][f"topic_{intent.value}"]
    return _say(language, "need_factor", plate=plate, topic=topic)


def general_answer(language: Language, intent: Intent) -> str:
    """An answer that needs no vehicle data (how to renew, lapses, reminders, disputes,
    anything else)."""
    return PHRASES[language][intent.value]


def _status_sentence(language: Language, facts: CoverageFacts) -> str:
    return _say(
        language,
        f"status_{facts.status}",
        plate=facts.plate,
        until=when(facts.covered_until, language),
        days=facts.days_to_expiry,
        start=when(facts.next_start, language),
        since=when(facts.lapsed_since, language),
        days_lapsed=facts.days_lapsed,
    )


def vehicle_answer(language: Language, intent: Intent, facts: CoverageFacts) -> str:
    """The answer to a status, expiry or insurer question from the verified facts."""
    covered = facts.covered_until is not None and facts.status in (
        "RENEWED",
        "ACTIVE",
        "EXPIRING_SOON",
    )
    until = when(facts.covered_until, language)
    if intent is Intent.EXPIRY_DATE and covered:
        key = "expiry_renewed" if facts.status == "RENEWED" else "expiry"
        text = _say(language, key, plate=facts.plate, until=until, days=facts.days_to_expiry)
    elif intent is Intent.INSURER and covered and facts.insurer is not None:
        text = _say(
            language,
            "insurer",
            plate=facts.plate,
            insurer=facts.insurer,
            policy=facts.policy_no_masked,
            until=until,
        )
        if facts.next_insurer is not None:
            start = when(facts.next_start, language)
            more = _say(language, "insurer_next", insurer=facts.next_insurer, start=start)
            text = _join(language, text, more)
    else:
        text = _status_sentence(language, facts)
    if facts.caveated:
        text = _join(language, text, PHRASES[language]["caveat"])
    return text


def _join(language: Language, first: str, second: str) -> str:
    return first + (" " if language == "en" else "") + second
