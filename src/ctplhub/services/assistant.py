"""Use case: answer an owner's question in words (``POST /v1/ask``, DESIGN §3).

Two steps, so that the caller can put the look-up under the §5.3 budgets (a service
knows nothing of the throttle):

1. :meth:`Assistant.plan` checks the question and understands it (pure rules of
   ``domain/assistant``). Its plan carries a :class:`CoverageQuery` only when the
   question asks about a vehicle *and* names a plate *and* brings a verification factor;
   every other question is answered by the plan itself, with no database work.
2. :meth:`Assistant.answer` writes the answer from the verified :class:`FullAnswer` that
   the caller got from :meth:`CheckCoverage.query`: the same answer, signed the same
   way, as the owner query gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctplhub.domain.assistant import Intent, Language, Understanding, understand
from ctplhub.domain.assistant.answers import (
    CoverageFacts,
    ask_for_factor,
    ask_for_plate,
    general_answer,
    vehicle_answer,
)
from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.identifiers import Plate
from ctplhub.services.check_coverage import CoverageQuery, FullAnswer

MAX_QUESTION_CHARS = 500
"""A question longer than this is refused (400 validation_failed): questions are a
sentence or two, and the rules' cost grows with the text (docs/DECISIONS.md)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer of §3 before it is presented; ``coverage`` is the verified answer that
    the presenter signs, when there was a look-up."""

    intent: Intent
    plate: Plate | None
    language: Language
    answer: str
    needs_verification: bool
    coverage: FullAnswer | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A question understood: ``lookup`` is the coverage query to run, or None when
    ``reply`` already answers it."""

    understanding: Understanding
    lookup: CoverageQuery | None
    reply: Reply | None


def _field_problem(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(
        "the request is not valid", details=[{"field": field, "problem": problem}]
    )


def facts_of(answer: FullAnswer) -> CoverageFacts:
    current, upcoming = answer.current_policy, answer.next_policy
    return CoverageFacts(
        plate=answer.plate.display,
        status=answer.status.value,
        covered_until=answer.covered_until,
        days_to_expiry=answer.days_to_expiry,
        lapsed_since=answer.lapsed_since,
        days_lapsed=answer.days_lapsed,
        insurer=(current.insurer_name or current.insurer_code) if current else None,
        policy_no_masked=current.policy_no_masked if current else None,
        next_insurer=(upcoming.insurer_name or upcoming.insurer_code) if upcoming else None,
        next_start=upcoming.coverage_start if upcoming else None,
        caveated=bool(answer.caveats),
    )


class Assistant:
    def __init__(self, *, max_question_chars: int = MAX_QUESTION_CHARS) -> None:
        self._max_chars = max_question_chars

    def plan(self, question: object, vin_last6: object = None) -> Plan:
        """Check and understand a question; raises ``ValidationFailed`` for a question
        that is not a non-blank string of at most the maximum length, or a factor that is
        not a string."""
        if not isinstance(question, str):
            raise _field_problem("question", "Input should be a valid string")
        if not question.strip():
            raise _field_problem("question", "the question is empty")
        if len(question) > self._max_chars:
            raise _field_problem("question", f"at most {self._max_chars} characters")
        if vin_last6 is not None and not isinstance(vin_last6, str):
            raise _field_problem("vin_last6", "Input should be a valid string")
        seen = understand(question)
        language, intent, plate = seen.language, seen.intent, seen.plate
        if not intent.needs_vehicle:
            text = general_answer(language, intent)
            return Plan(seen, None, Reply(intent, plate, language, text, False))
        factor_missing = vin_last6 is None or not vin_last6.strip()
        if plate is None:
            text = ask_for_plate(language, seen.ambiguous_province)
            return Plan(seen, None, Reply(intent, None, language, text, factor_missing))
        if factor_missing:
            text = ask_for_factor(language, intent, plate.display)
            return Plan(seen, None, Reply(intent, plate, language, text, True))
        return Plan(seen, CoverageQuery(plate.value, vin_last6), None)

    def answer(self, plan: Plan, verified: FullAnswer) -> Reply:
        """The reply to a planned vehicle question, from its verified coverage answer."""
        seen = plan.understanding
        text = vehicle_answer(seen.language, seen.intent, facts_of(verified))
        return Reply(seen.intent, verified.plate, seen.language, text, False, verified)
