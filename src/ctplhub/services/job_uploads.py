"""Reading a verify job's upload (DESIGN §11): CSV or XLSX with the columns ``plate,vin,at``.

Both readers stream: a CSV record by record, an XLSX sheet row by row through
``openpyxl``'s read-only mode, so a million-row upload never sits in memory as objects.
Each row becomes a ``JobRow`` of three strings (``""`` where a cell is empty). A row that
cannot be read as a row (a CSV record the csv module refuses) is kept in its place with
its error code, so the job answers it with that error instead of failing. A file that
cannot be read at all (not UTF-8, not a workbook, a header naming neither ``plate`` nor
``vin``) is refused whole: ``400 malformed_csv`` / ``400 malformed_xlsx``.

Blank rows are not rows (they get no result). A header may order the three columns as it
likes and may carry others, which are ignored. A date-time cell of a workbook has no
zone; it is read as Beijing time (UTC+08:00), the time every answer speaks.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO

from ctplhub.domain.errors import MalformedInput
from ctplhub.domain.instants import BEIJING

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COLUMNS = ("plate", "vin", "at")


@dataclass(frozen=True, slots=True)
class JobRow:
    """One uploaded row as given; ``error`` is the code of a row that could not be read."""

    plate: str
    vin: str
    at: str
    error: str | None = None


def malformed_csv(message: str) -> MalformedInput:
    return MalformedInput(message, code="malformed_csv")


def malformed_xlsx(message: str) -> MalformedInput:
    return MalformedInput(message, code="malformed_xlsx")


Rows = Generator[JobRow, None, None]


def read_rows(source: IO[bytes], kind: str) -> Rows:
    """The upload's rows in order; ``kind`` is ``CSV`` or ``XLSX``. Close it (``close()``)
    before the file when it may not have been read to the end."""
    return read_xlsx(source) if kind == XLSX else read_csv(source)


def _positions(header: Sequence[object]) -> list[int]:
    names = [str(name).strip().lower() if name is not None else "" for name in header]
    if not {"plate", "vin"} & set(names):
        raise ValueError("the header row must name plate and/or vin (and optionally at)")
    return [names.index(column) if column in names else -1 for column in COLUMNS]


def _pick(values: Sequence[object], positions: Sequence[int]) -> tuple[str, str, str]:
    picked = [_text(values[p]) if 0 <= p < len(values) else "" for p in positions]
    return picked[0], picked[1], picked[2]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=BEIJING)
        return aware.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time(), BEIJING).isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_csv(source: IO[bytes]) -> Rows:
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise malformed_csv("the CSV is empty; its first line names plate,vin,at") from None
        try:
            positions = _positions(header)
        except ValueError as error:
            raise malformed_csv(str(error)) from None
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield JobRow("", "", "", error="malformed_csv")
                continue
            if not any(field.strip() for field in record):
                continue
            yield JobRow(*_pick(record, positions))
    except UnicodeDecodeError:
        raise malformed_csv("the CSV is not valid UTF-8") from None
    except csv.Error as error:  # the header itself
        raise malformed_csv(f"the CSV cannot be read: {error}") from None
    finally:
        text.detach()  # the caller's file stays open


def read_xlsx(source: IO[bytes]) -> Rows:
    """The first worksheet's rows, through ``openpyxl`` in read-only (streaming) mode."""
    from openpyxl import load_workbook  # only an XLSX upload pays for the import

    try:
        book = load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as error:
        raise malformed_xlsx(f"the file is not an XLSX workbook ({type(error).__name__})") from None
    except Exception as error:  # openpyxl's own exceptions, and XML parse errors
        raise malformed_xlsx(f"the workbook cannot be read ({type(error).__name__})") from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        try:
            header = next(rows, None)
            if header is None:
                raise malformed_xlsx("the sheet is empty; its first row names plate,vin,at")
            try:
                positions = _positions(header)
            except ValueError as error:
                raise malformed_xlsx(str(error)) from None
            for values in rows:
                if all(value is None or _text(value) == "" for value in values):
                    continue
                yield JobRow(*_pick(values, positions))
        except MalformedInput:
            raise
        except Exception as error:  # a damaged sheet part, found while streaming it
            raise malformed_xlsx(f"the sheet cannot be read ({type(error).__name__})") from None
    finally:
        book.close()
