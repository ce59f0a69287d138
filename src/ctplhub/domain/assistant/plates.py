"""Finding a plate in free text (DESIGN §2.1): Chinese or English, typed or spoken.

People write a plate the way they would say it: ``苏E 12345``, ``苏Ｅ１２３４５``, ``su
e12345``, ``苏E幺二三四五``. The finder reads the text once, left to right: at each place
a province can start (its character, its pinyin syllable as a word, or its name), it
gathers the plate characters that follow, skipping separators, reading spoken numerals as
digits and the letters I and O of a serial as 1 and 0 (GA 36-2018 never uses them there).
Every candidate is then checked by ``Plate.parse``, so only a valid plate is ever found.

Where a candidate could be 7 or 8 characters long (``苏E12345 does`` could read as the
new-energy ``苏E12345D``), the longer one is taken only when it ends where a word ends:
a plate never ends inside a word. A pinyin syllable that names two provinces (``yu`` is
渝 or 豫) names none: the plate is left unfound rather than guessed (docs/DECISIONS.md,
"Assistant").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ctplhub.domain.errors import InvalidPlate
from ctplhub.domain.identifiers import PROVINCES, Plate

SPOKEN_DIGITS = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "拐": "7",
    "八": "8",
    "九": "9",
    "勾": "9",
}
"""Digits as they are read aloud, radio style included (幺 1, 两 2, 拐 7, 勾 9, 洞 0)."""

PINYIN_PROVINCES: dict[str, str] = {
    "JING": "京",
    "HU": "沪",
    "YUE": "粤",
    "SU": "苏",
    "ZHE": "浙",
    "LU": "鲁",
    "CHUAN": "川",
    "E": "鄂",
    "XIANG": "湘",
    "WAN": "皖",
    "MIN": "闽",
    "LIAO": "辽",
    "HEI": "黑",
    "MENG": "蒙",
    "XIN": "新",
    "YUN": "云",
    "QIONG": "琼",
    "QING": "青",
    "ZANG": "藏",
    "NING": "宁",
    "SHAAN": "陕",
    "SHAN": "陕",
}
"""Province abbreviations by their pinyin syllable, where the syllable names one."""

AMBIGUOUS_PINYIN: dict[str, str] = {
    "YU": "渝豫",
    "JI": "冀吉",
    "JIN": "津晋",
    "GAN": "赣甘",
    "GUI": "桂贵",
}
"""Syllables that name two provinces: no plate is guessed from them."""

PROVINCE_NAMES: dict[str, str] = {
    "BEIJING": "京",
    "TIANJIN": "津",
    "SHANGHAI": "沪",
    "CHONGQING": "渝",
    "HEBEI": "冀",
    "HENAN": "豫",
    "YUNNAN": "云",
    "LIAONING": "辽",
    "HEILONGJIANG": "黑",
    "HUNAN": "湘",
    "ANHUI": "皖",
    "SHANDONG": "鲁",
    "XINJIANG": "新",
    "JIANGSU": "苏",
    "ZHEJIANG": "浙",
    "JIANGXI": "赣",
    "HUBEI": "鄂",
    "GUANGXI": "桂",
    "GANSU": "甘",
    "SHANXI": "晋",
    "NEIMENGGU": "蒙",
    "SHAANXI": "陕",
    "JILIN": "吉",
    "FUJIAN": "闽",
    "GUIZHOU": "贵",
    "GUANGDONG": "粤",
    "QINGHAI": "青",
    "XIZANG": "藏",
    "TIBET": "藏",
    "SICHUAN": "川",
    "NINGXIA": "宁",
    "HAINAN": "琼",
}
"""Provinces by their name in pinyin (or English), for ``plate henan a12345``."""

_PREFIXES: dict[str, str] = {**PINYIN_PROVINCES, **PROVINCE_NAMES, **AMBIGUOUS_PINYIN}
# By first letter, longest first, so that ``JING`` is tried before ``JIN`` and ``JI``.
_PREFIX_ORDER: dict[str, list[str]] = {}
for _prefix in sorted(_PREFIXES, key=len, reverse=True):
    _PREFIX_ORDER.setdefault(_prefix[0], []).append(_prefix)
# Where a plate can start: a province's character, or a word in Latin letters (its
# pinyin or name); a plate holds digits, spoken ones included.
_ANCHOR = re.compile(f"[{PROVINCES}]|(?<![A-Z0-9])[A-Z]+")
_DIGIT = re.compile(f"[0-9{''.join(SPOKEN_DIGITS)}]")
_SEPARATORS = frozenset(" \t\r\n·•.-_・‧∙⋅‐‑‒–—―−/:：")
_SUFFIXES = "学警挂港澳领试超"
_MIN_DIGITS = 2


@dataclass(frozen=True, slots=True)
class FoundPlate:
    """A plate found in a question, and where it lies in the normalised text."""

    plate: Plate | None
    start: int = 0
    end: int = 0
    ambiguous: str = ""
    """The provinces an ambiguous syllable could name (``渝豫``) when that stopped a find."""


NOT_FOUND = FoundPlate(None)


def normalise_text(question: str) -> str:
    """NFKC (full-width to half-width) and upper case: what every rule here reads."""
    return unicodedata.normalize("NFKC", question).upper()


def _serial_char(char: str) -> str | None:
    """The plate character ``char`` stands for, or None when it is none."""
    if "A" <= char <= "Z" or "0" <= char <= "9" or char in _SUFFIXES:
        return char
    return SPOKEN_DIGITS.get(char)


def _gather(text: str, at: int) -> tuple[list[str], list[int], list[bool]]:
    """Up to 8 plate characters from ``at``: the issuing letter and serial (at most 7)
    and the one after them, which tells whether the plate ends where a word ends; with
    the index just past each and whether a separator came before each."""
    chars: list[str] = []
    ends: list[int] = []
    spaced: list[bool] = []
    i, n = at, len(text)
    gap = False
    while i < n and len(chars) < 8:
        char = text[i]
        if char in _SEPARATORS:
            gap = True
            i += 1
            continue
        mapped = _serial_char(char)
        if mapped is None:
            break
        chars.append(mapped)
        spaced.append(gap)
        gap = False
        i += 1
        ends.append(i)
    return chars, ends, spaced


def _as_plate(province: str, chars: list[str]) -> Plate | None:
    if not chars or not ("A" <= chars[0] <= "Z"):
        return None
    # Free text is full of words that read as an all-letter serial (``END DATE`` after
    # 鄂's ``E``): a plate found in text has at least two digits in its serial.
    if sum("0" <= char <= "9" for char in chars[1:]) < _MIN_DIGITS:
        return None
    serial = "".join(chars[1:])
    # A serial never holds I or O (GA 36-2018): typed for 1 and 0.
    serial = serial.replace("I", "1").replace("O", "0")
    try:
        return Plate.parse(province + chars[0] + serial)
    except InvalidPlate:
        return None


def _plate_after(province: str, text: str, at: int, start: int) -> FoundPlate | None:
    chars, ends, spaced = _gather(text, at)
    for length in (7, 6):  # characters after the province: new-energy first
        if len(chars) < length:
            continue
        # The plate must end where a word ends: nothing glued to its last character.
        if len(chars) > length and not spaced[length]:
            continue
        plate = _as_plate(province, chars[:length])
        if plate is not None:
            return FoundPlate(plate, start, ends[length - 1])
    return None


def find_plate(text: str) -> FoundPlate:
    """The first valid plate in ``text`` (already ``normalise_text``-ed), or ``NOT_FOUND``."""
    if len(_DIGIT.findall(text)) < _MIN_DIGITS:
        return NOT_FOUND  # most questions name no plate: one scan says so
    ambiguous = ""
    anchor = _ANCHOR.search(text)
    while anchor is not None:
        i = anchor.start()
        if text[i] in PROVINCES:
            found = _plate_after(text[i], text, i + 1, i)
            if found is not None:
                return found
            anchor = _ANCHOR.search(text, i + 1)
            continue
        word = anchor.group()
        found, maybe = _pinyin_plate(text, i, word)
        if found is not None:
            return found
        ambiguous = ambiguous or maybe
        anchor = _ANCHOR.search(text, anchor.end())
    return FoundPlate(None, ambiguous=ambiguous)


def _pinyin_plate(text: str, i: int, word: str) -> tuple[FoundPlate | None, str]:
    """A plate that starts with a province written in Latin letters at ``i``: a name
    (``HENAN``) or a syllable (``SU``), as a word of its own or glued to the plate
    (``SUE12345``). A word that is itself a name or syllable is read as nothing else."""
    if word in _PREFIXES:
        candidates: list[str] = [word]
    else:
        candidates = [p for p in _PREFIX_ORDER.get(word[0], ()) if word.startswith(p)]
    for prefix in candidates:
        at = i + len(prefix)
        if prefix in AMBIGUOUS_PINYIN:
            if _plate_after("京", text, at, i) is not None:  # a plate, whichever province
                return None, AMBIGUOUS_PINYIN[prefix]
            continue
        found = _plate_after(_PREFIXES[prefix], text, at, i)
        if found is not None:
            return found, ""
    return None, ""
