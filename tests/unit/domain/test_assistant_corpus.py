"""The assistant's accuracy on a corpus of hard phrasings (tests/data/assistant_corpus.jsonl):
typos, dialect, mixed languages, full-width text, spoken numbers, pinyin provinces,
questions with no plate and questions about something else. Each of intent, plate and
language must be right for at least 95 % of the questions; the misses are printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctplhub.domain.assistant import understand

CORPUS = Path(__file__).resolve().parents[2] / "data" / "assistant_corpus.jsonl"
REQUIRED = 0.95


def _rows() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_the_corpus_is_large_and_varied() -> None:
    rows = _rows()
    assert len(rows) >= 300
    assert len({row["question"] for row in rows}) == len(rows)
    assert {row["intent"] for row in rows} == {
        "renewal_status",
        "expiry_date",
        "insurer",
        "how_to_renew",
        "lapse_consequences",
        "subscribe",
        "dispute",
        "unknown",
    }
    assert sum(row["plate"] is None for row in rows) >= 80
    assert sum(row["language"] == "en" for row in rows) >= 80


@pytest.mark.parametrize("field", ["intent", "plate", "language"])
def test_accuracy(field: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows()
    misses = []
    for row in rows:
        seen = understand(row["question"])
        got = {
            "intent": seen.intent.value,
            "plate": seen.plate.display if seen.plate else None,
            "language": seen.language,
        }[field]
        if got != row[field]:
            misses.append(f"  {row['question']!r}: expected {row[field]!r}, got {got!r}")
    accuracy = 1 - len(misses) / len(rows)
    with capsys.disabled():
        print(f"\nassistant {field} accuracy: {accuracy:.1%} ({len(rows)} questions)")
        print("\n".join(misses))
    assert accuracy >= REQUIRED, f"{field} accuracy {accuracy:.1%}:\n" + "\n".join(misses)
