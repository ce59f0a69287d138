"""The natural-language assistant's pure core (``POST /v1/ask``, DESIGN §3).

``understand(question)`` finds the plate (``plates``), the intent (``intents``) and the
language (``language``) of a question; ``compose`` (``answers``) writes the answer from
templates (``phrases``) and, for a vehicle question, from the facts of the signed coverage
answer. Deterministic rules, standard library only: no model, no network.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctplhub.domain.assistant.intents import Intent, classify
from ctplhub.domain.assistant.language import Language, detect_language
from ctplhub.domain.assistant.plates import find_plate, normalise_text
from ctplhub.domain.identifiers import Plate

__all__ = ["Intent", "Language", "Understanding", "understand"]


@dataclass(frozen=True, slots=True)
class Understanding:
    intent: Intent
    plate: Plate | None
    language: Language
    ambiguous_province: str = ""
    """Two provinces a pinyin syllable could name (``渝豫``), when no plate was taken."""


def understand(question: str) -> Understanding:
    text = normalise_text(question)
    found = find_plate(text)
    rest = (text[: found.start] + " " + text[found.end :]) if found.plate else text
    rest = rest.lower()
    return Understanding(
        intent=classify(rest, has_plate=found.plate is not None),
        plate=found.plate,
        language=detect_language(rest),
        ambiguous_province=found.ambiguous,
    )
