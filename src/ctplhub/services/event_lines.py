"""Reading NDJSON and CSV event files line by line (DESIGN §3 batch formats).

Shared by the batch endpoint and ``ctplhub import``. Each line becomes either the
decoded object or the error that explains why it could not be decoded, so one bad
line never stops the good ones. Lines are numbered from 1; a CSV header is line 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from typing import IO

import orjson

from ctplhub.domain.errors import MalformedInput, ValidationFailed
from ctplhub.domain.policy import EVENT_FIELDS
from ctplhub.services.report_events import RawLine

NDJSON = "application/x-ndjson"
CSV = "text/csv"


def ndjson_lines(source: IO[bytes]) -> Iterator[RawLine]:
    """Numbered by physical line, so an engineer can find a rejected line in an editor;
    blank lines are not events and get no result."""
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            yield number, MalformedInput(f"line {number} is not valid JSON: {error}")
            continue
        if isinstance(value, dict):
            yield number, value
        else:
            yield number, ValidationFailed("each line must be a JSON object")


def _not_utf8() -> MalformedInput:
    return MalformedInput("the CSV is not valid UTF-8", code="malformed_csv")


def _csv_records(source: IO[bytes]) -> Generator[list[str] | csv.Error, None, None]:
    """The CSV's records in order, a malformed one as its ``csv.Error`` (e.g. a field over
    the csv module's size limit); a file that is not UTF-8 is refused. The caller's file
    stays open."""
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        while True:
            try:
                yield next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield error
    except UnicodeDecodeError:
        raise _not_utf8() from None
    finally:
        text.detach()


def csv_lines(source: IO[bytes], fields: Sequence[str] = EVENT_FIELDS) -> Iterator[RawLine]:
    """Numbered by CSV record: the header is line 0, the first row line 1. The header
    may name only ``fields`` (the event fields of §2.4, unless another feed says)."""
    with closing(_csv_records(source)) as records:
        first = next(records, None)
        if first is None or isinstance(first, csv.Error):
            raise MalformedInput(
                "the CSV has no header; line 0 must name the fields", code="malformed_csv"
            )
        header = [h.strip() for h in first]
        unknown = [h for h in header if h not in fields]
        if unknown:
            raise ValidationFailed(
                f"the CSV header names unknown field(s): {', '.join(unknown)}",
                details={"fields": unknown, "allowed": list(fields)},
            )
        for number, row in enumerate(records, start=1):
            if isinstance(row, csv.Error):
                yield number, MalformedInput(f"line {number}: {row}", code="malformed_csv")
            elif not row:
                continue  # an empty record is no event and gets no result
            elif len(row) != len(header):
                message = f"line has {len(row)} values but the header names {len(header)} fields"
                yield number, ValidationFailed(message)
            else:
                yield number, dict(zip(header, row, strict=True))


def count_lines(source: IO[bytes], kind: str) -> int:
    """How many events a file holds, without decoding them; rewinds the file.

    It reads the whole file first, so a file that cannot be read at all (a CSV that is not
    UTF-8) is refused here, before any of its lines is stored.
    """
    if kind == CSV:
        with closing(_csv_records(source)) as records:
            # A malformed record still gets a result line; the header is not an event.
            count = max(sum(1 for r in records if isinstance(r, csv.Error) or r) - 1, 0)
    else:
        count = sum(1 for raw in source if raw.strip())
    source.seek(0)
    return count


def read_lines(
    source: IO[bytes], kind: str, fields: Sequence[str] = EVENT_FIELDS
) -> Iterator[RawLine]:
    return csv_lines(source, fields) if kind == CSV else ndjson_lines(source)
