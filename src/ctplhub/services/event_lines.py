"""Reading NDJSON and CSV event files line by line (DESIGN §3 batch formats).

Shared by the batch endpoint and ``ctplhub import``. Each line becomes either the
decoded object or the error that explains why it could not be decoded, so one bad
line never stops the good ones. Lines are numbered from 1; a CSV header is line 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

import orjson

from ctplhub.domain.errors import DomainError, MalformedInput, ValidationFailed
from ctplhub.domain.policy import EVENT_FIELDS
from ctplhub.services.report_events import RawLine

NDJSON = "application/x-ndjson"
CSV = "text/csv"


def ndjson_lines(source: IO[bytes]) -> Iterator[RawLine]:
    number = 0
    for raw in source:
        if not raw.strip():
            continue  # blank lines (a trailing newline) are not events
        number += 1
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            yield number, MalformedInput(f"line {number} is not valid JSON: {error}")
            continue
        if isinstance(value, dict):
            yield number, value
        else:
            yield number, ValidationFailed("each line must be a JSON object")


def csv_lines(source: IO[bytes]) -> Iterator[RawLine]:
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise MalformedInput("the CSV is empty; line 0 must name the fields") from None
        unknown = [h for h in header if h not in EVENT_FIELDS]
        if unknown:
            raise ValidationFailed(
                f"the CSV header names unknown field(s): {', '.join(unknown)}",
                details={"fields": unknown, "allowed": list(EVENT_FIELDS)},
            )
        for number, row in enumerate(reader, start=1):
            if not row:
                continue
            if len(row) != len(header):
                yield (
                    number,
                    ValidationFailed(
                        f"line has {len(row)} values but the header names {len(header)} fields"
                    ),
                )
                continue
            yield number, dict(zip(header, row, strict=True))
    except UnicodeDecodeError:
        raise MalformedInput("the CSV is not UTF-8") from None
    finally:
        text.detach()  # leave the caller's file open


def count_lines(source: IO[bytes], kind: str) -> int:
    """How many events a file holds, without decoding them; rewinds the file."""
    if kind == CSV:
        text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
        try:
            count = max(sum(1 for row in csv.reader(text) if row) - 1, 0)
        except (UnicodeDecodeError, csv.Error):
            count = 0
        text.detach()
    else:
        count = sum(1 for raw in source if raw.strip())
    source.seek(0)
    return count


def read_lines(source: IO[bytes], kind: str) -> Iterator[RawLine]:
    return csv_lines(source) if kind == CSV else ndjson_lines(source)


__all__ = ["CSV", "NDJSON", "DomainError", "count_lines", "read_lines"]
