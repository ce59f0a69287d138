"""The assistant's pure rules (domain/assistant): plates in free text, intents, language,
and the answers written from a coverage answer's facts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.assistant import Intent, understand
from ctplhub.domain.assistant.answers import (
    CoverageFacts,
    ask_for_factor,
    ask_for_plate,
    general_answer,
    vehicle_answer,
)
from ctplhub.domain.assistant.phrases import PHRASES
from ctplhub.domain.assistant.plates import (
    AMBIGUOUS_PINYIN,
    PINYIN_PROVINCES,
    PROVINCE_NAMES,
    SPOKEN_DIGITS,
    find_plate,
    normalise_text,
)
from ctplhub.domain.identifiers import ORDINARY_SUFFIXES, PROVINCES, Plate
from strategies import compact_plates

# Filler that can never be part of a plate: Chinese words with no province, numeral or
# suffix character in them, punctuation, and English words of two letters or more.
_ZH_FILLER = [
    "的",
    "交强险",
    "续保了吗",
    "请问",
    "我的车",
    "保险",
    "查询",
    "谢谢",
    "，",
    "。",
    "？",
]
_EN_FILLER = ["is", "my", "plate", "renewed", "when", "does", "insurance", "please", "ok"]
_SEPARATORS = ["", "", "", " ", "·", "•", "-", "  ", "."]


def _has_digits(compact: str) -> bool:
    """The finder's rule: a plate in free text has at least two digits in its serial."""
    return sum(c.isdigit() for c in compact[2:]) >= 2


@st.composite
def spelled(draw: st.DrawFn, compact: str) -> str:
    """``compact`` as people type it: separators anywhere, lower case, full-width."""
    out = compact[0]
    for char in compact[1:]:
        out += draw(st.sampled_from(_SEPARATORS)) + char
    if draw(st.booleans()):
        out = out.lower()
    if draw(st.booleans()):
        out = out.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    return out


def _filler(words: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(words), max_size=4).map(" ".join)


@given(
    compact_plates().filter(_has_digits).flatmap(lambda p: st.tuples(st.just(p), spelled(p))),
    _filler(_ZH_FILLER + _EN_FILLER),
    _filler(_ZH_FILLER + _EN_FILLER),
)
def test_any_valid_plate_in_filler_text_is_found(
    plate: tuple[str, str], before: str, after: str
) -> None:
    compact, written = plate
    question = f"{before} {written} {after}"
    found = understand(question).plate
    assert found is not None, question
    assert found.value == compact


@given(
    st.sampled_from(PROVINCES),
    st.sampled_from("ABCDEFGHJK"),
    st.lists(st.sampled_from("0123456789"), min_size=5, max_size=5),
    st.data(),
)
def test_a_plate_read_aloud_is_found(
    province: str, letter: str, digits: list[str], data: st.DataObject
) -> None:
    spoken = {d: [w for w, v in SPOKEN_DIGITS.items() if v == d] for d in "0123456789"}
    said = "".join(data.draw(st.sampled_from([d, *spoken[d]])) for d in digits)
    found = understand(f"{province}{letter}{said}的交强险续保了吗").plate
    assert found is not None
    assert found.value == province + letter + "".join(digits)


@given(
    st.sampled_from(sorted(PINYIN_PROVINCES.items()) + sorted(PROVINCE_NAMES.items())),
    st.sampled_from(["", " ", "-"]),
)
def test_a_province_in_pinyin_is_found(province: tuple[str, str], gap: str) -> None:
    syllable, character = province
    found = understand(f"is plate {syllable.lower()}{gap}e12345 renewed?").plate
    assert found is not None
    assert found.value == f"{character}E12345"


@pytest.mark.parametrize("syllable", sorted(AMBIGUOUS_PINYIN))
def test_a_syllable_of_two_provinces_names_no_plate(syllable: str) -> None:
    seen = understand(f"is plate {syllable.lower()} a12345 renewed?")
    assert seen.plate is None
    assert seen.ambiguous_province == AMBIGUOUS_PINYIN[syllable]
    assert seen.intent is Intent.RENEWAL_STATUS
    for language in ("zh", "en"):
        text = ask_for_plate(language, seen.ambiguous_province)
        assert all(p in text for p in AMBIGUOUS_PINYIN[syllable])


@given(st.text(max_size=80))
def test_anything_is_understood_and_only_valid_plates_come_out(question: str) -> None:
    seen = understand(question)
    assert seen.language in ("zh", "en")
    assert seen.intent in Intent
    if seen.plate is not None:
        assert Plate.parse(seen.plate.display) == seen.plate


@pytest.mark.parametrize(
    ("question", "plate"),
    [
        ("苏E12345 does it have CTPL", "苏E12345"),  # not the new-energy 苏E12345D
        ("沪A12345 fine?", "沪A12345"),
        ("粤B12345D 新能源", "粤B12345D"),
        ("粤B·D12345", "粤BD12345"),
        ("苏E1234学", "苏E1234学"),
        ("京A1234O续保了吗", "京A12340"),  # O is never in a serial: a typed 0
        ("京AI2345", "京A12345"),
        ("京A洞洞幺幺八", "京A00118"),
        ("plate sue12345", "苏E12345"),
        ("plate henan a12345", "豫A12345"),
        ("苏E12345和苏E54321", "苏E12345"),  # the first one
        ("苏E123456续保了吗", None),  # one digit too many is no plate, not a cut one
        ("苏E1234续保了吗", None),
        ("苏12345", None),
        ("使A12345", None),
        ("end date of the policy", None),  # 鄂 + "ND DATE" has no digits
        ("Remind me before my insurance expires", None),
    ],
)
def test_plates_in_hard_places(question: str, plate: str | None) -> None:
    found = find_plate(normalise_text(question)).plate
    assert (found.value if found else None) == plate


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("保险还有效不", Intent.RENEWAL_STATUS),
        ("交强险啥时候到期", Intent.EXPIRY_DATE),
        ("车险断保了咋办", Intent.LAPSE_CONSEQUENCES),
        ("苏E12345要不要续保", Intent.RENEWAL_STATUS),
        ("苏E12345", Intent.RENEWAL_STATUS),  # a bare plate asks for its status
        ("苏E12345违章了吗", Intent.UNKNOWN),  # another topic
        ("交强险断了影响年检吗", Intent.LAPSE_CONSEQUENCES),  # names the insurance
        ("how do I renew my driving licence", Intent.UNKNOWN),
        ("我明明续保了怎么显示脱保", Intent.DISPUTE),
        ("到期前提醒我", Intent.SUBSCRIBE),
        ("Which 保险公司 covers 沪A12345?", Intent.INSURER),
        ("你好", Intent.UNKNOWN),
    ],
)
def test_intents(question: str, intent: Intent) -> None:
    assert understand(question).intent is intent


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("我的plate 苏E12345 renewed了吗", "zh"),
        ("Which 保险公司 covers 沪A12345?", "en"),
        ("交强险 how to renew", "en"),
        ("苏E12345", "zh"),  # nothing to go by: Chinese, the registry's first language
        ("苏E12345 renewed?", "en"),
        ("Is 苏E12345 renewed? 谢谢", "en"),
    ],
)
def test_language(question: str, language: str) -> None:
    assert understand(question).language == language


def test_both_languages_say_everything() -> None:
    assert PHRASES["zh"].keys() == PHRASES["en"].keys()


def _facts(status: str, **changes: object) -> CoverageFacts:
    base: dict[str, object] = {
        "plate": "苏E·12345",
        "status": status,
        "covered_until": datetime(2027, 2, 28, 16, 0, tzinfo=UTC),  # 2027-03-01 00:00 +08
        "days_to_expiry": 95,
        "lapsed_since": None,
        "days_lapsed": None,
        "insurer": "中国人民财产保险",
        "policy_no_masked": "…0001",
        "next_insurer": None,
        "next_start": None,
        "caveated": False,
    }
    base.update(changes)
    return CoverageFacts(**base)  # type: ignore[arg-type]


_LAPSED = {
    "covered_until": None,
    "days_to_expiry": None,
    "lapsed_since": datetime(2026, 2, 28, 16, 0, tzinfo=UTC),
    "days_lapsed": 268,
    "insurer": None,
}
_ALL_STATUSES = {
    "RENEWED": {"next_insurer": "平安", "next_start": datetime(2026, 2, 28, 16, tzinfo=UTC)},
    "ACTIVE": {},
    "EXPIRING_SOON": {"days_to_expiry": 5},
    "PENDING_START": {
        "covered_until": None,
        "insurer": None,
        "next_insurer": "PICC",
        "next_start": datetime(2026, 12, 1, 16, tzinfo=UTC),
    },
    "LAPSED": _LAPSED,
    "NO_RECORD": {**_LAPSED, "lapsed_since": None, "days_lapsed": None},
}


@pytest.mark.parametrize("status", sorted(_ALL_STATUSES))
@pytest.mark.parametrize("intent", [Intent.RENEWAL_STATUS, Intent.EXPIRY_DATE, Intent.INSURER])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_answer_is_filled_in(status: str, intent: Intent, language: str) -> None:
    text = vehicle_answer(language, intent, _facts(status, **_ALL_STATUSES[status]))  # type: ignore[arg-type]
    assert "{" not in text
    assert "None" not in text
    assert "苏E·12345" in text


def test_answers_give_the_date_in_beijing_time_and_the_insurer() -> None:
    zh = vehicle_answer("zh", Intent.EXPIRY_DATE, _facts("ACTIVE"))
    assert zh == "苏E·12345的交强险保障至2027年3月1日 00:00（北京时间），还有95天。"
    en = vehicle_answer("en", Intent.INSURER, _facts("ACTIVE", caveated=True))
    assert en.startswith("The current CTPL of 苏E·12345 is with 中国人民财产保险 (policy …0001)")
    assert "2027-03-01 00:00" in en
    assert en.endswith("your insurer's policy document prevails.")
    lapsed = vehicle_answer("zh", Intent.EXPIRY_DATE, _facts("LAPSED", **_LAPSED))
    assert "已脱保" in lapsed
    assert "268天" in lapsed


def test_questions_without_vehicle_data_have_their_own_answers() -> None:
    for language in ("zh", "en"):
        for intent in Intent:
            if not intent.needs_vehicle:
                assert general_answer(language, intent) == PHRASES[language][intent.value]
        assert "苏E·12345" in ask_for_factor(language, Intent.INSURER, "苏E·12345")
    assert ORDINARY_SUFFIXES  # (the suffix plates are covered by the strategies too)
