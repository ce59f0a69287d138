"""Is a question Chinese or English? (the answer is written in the same language)

Mixed text is common (``我的plate 苏E12345 renewed了吗``, ``Which 保险公司 covers
沪A12345?``), and the content words of either language say little: ``交强险`` is how an
English speaker names the insurance too. What decides is the grammar around them: the
Chinese function characters (的 了 吗 ...) against the English function words (is, my,
when ...). On a tie, Chinese characters count half an English word each, and a question
with neither (a bare plate) is Chinese, the registry's first language
(docs/DECISIONS.md, "Assistant").
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["zh", "en"]

ZH_FUNCTION = frozenset("的了吗呢吧么没啊是我你怎哪啥几多要能会还请帮")
EN_FUNCTION = frozenset(
    [
        "is",
        "are",
        "was",
        "does",
        "do",
        "did",
        "has",
        "have",
        "my",
        "the",
        "when",
        "which",
        "what",
        "who",
        "how",
        "where",
        "can",
        "i",
        "it",
        "me",
        "to",
        "of",
        "for",
        "please",
        "still",
        "will",
        "a",
        "an",
        "if",
        "any",
        "you",
        "there",
    ]
)
_HAN = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z]{2,}|\bi\b")


def detect_language(text: str) -> Language:
    """``text``: lower case, with the plate cut out."""
    words = _WORD.findall(text)
    en = sum(word in EN_FUNCTION for word in words)
    zh = sum(char in ZH_FUNCTION for char in text)
    if zh != en:
        return "zh" if zh > en else "en"
    han = len(_HAN.findall(text))
    return "en" if len(words) > han / 2 else "zh"
