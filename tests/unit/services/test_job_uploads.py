"""Reading verify-job uploads (DESIGN §11) and writing their result rows, without a
database: CSV and XLSX readers stream rows of three strings; a job's result row has the
bulk-verify CSV's columns with the same values as ``POST /v1/coverage/verify`` gives."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import Workbook

from ctplhub.api.presenters import verify_csv
from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.errors import InvalidPlate, MalformedInput
from ctplhub.domain.identifiers import Plate, Vin
from ctplhub.services.job_uploads import CSV, XLSX, JobRow, read_rows
from ctplhub.services.verify_bulk import RejectedItem, VerifiedItem
from ctplhub.services.verify_jobs import RESULT_COLUMNS, RESULT_HEADER, answer_rows

VIN = "LSVAU218XN2183294"


def rows_of(raw: bytes, kind: str = CSV) -> list[JobRow]:
    return list(read_rows(io.BytesIO(raw), kind))


def xlsx(*rows: list[object]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_csv_columns_in_any_order_with_a_bom_blank_lines_and_extra_columns() -> None:
    raw = (
        "\ufeffAt,note,VIN,plate\r\n,x,,苏E12345\r\n\r\n"
        "2026-01-01T00:00:00+08:00,y, LSVAU218XN2183294 ,\r\n"
    )
    assert rows_of(raw.encode()) == [
        JobRow("苏E12345", "", ""),
        JobRow("", VIN, "2026-01-01T00:00:00+08:00"),
    ]


def test_a_csv_with_only_a_vin_column_and_short_records() -> None:
    assert rows_of(b"vin\nA\n") == [JobRow("", "A", "")]
    assert rows_of(b"plate,vin,at\nX\n") == [JobRow("X", "", "")]


@pytest.mark.parametrize(
    "raw", [b"", b"plate,vin,at\n\xff,,\n", b"name\nx\n"], ids=["empty", "latin1", "header"]
)
def test_a_csv_that_cannot_be_read_is_malformed_csv(raw: bytes) -> None:
    with pytest.raises(MalformedInput) as refused:
        rows_of(raw)
    assert refused.value.code == "malformed_csv"


def test_a_record_the_csv_module_refuses_is_a_row_with_its_error() -> None:
    long_field = "x" * (csv.field_size_limit() + 1)
    raw = f"plate,vin,at\n苏E12345,,\n{long_field},,\n苏E12346,,\n".encode()
    assert rows_of(raw) == [
        JobRow("苏E12345", "", ""),
        JobRow("", "", "", error="malformed_csv"),
        JobRow("苏E12346", "", ""),
    ]


def test_xlsx_cells_become_text_and_dates_are_beijing_time() -> None:
    raw = xlsx(
        ["plate", "vin", "at"],
        ["苏E12345", None, datetime(2026, 6, 1, 8, 30)],
        [None, VIN, date(2026, 6, 2)],
        [None, None, None],
        ["苏E12346", None, " 2026-06-01T00:00:00+09:00 "],
        [12345.0, None, None],
    )
    assert rows_of(raw, XLSX) == [
        JobRow("苏E12345", "", "2026-06-01T08:30:00+08:00"),
        JobRow("", VIN, "2026-06-02T00:00:00+08:00"),
        JobRow("苏E12346", "", "2026-06-01T00:00:00+09:00"),
        JobRow("12345", "", ""),
    ]


@pytest.mark.parametrize(
    "raw",
    [b"", b"not a zip", b"PK\x03\x04garbage", xlsx(["name"], ["x"]), xlsx()],
    ids=["empty", "text", "broken-zip", "no-plate-column", "no-rows"],
)
def test_a_workbook_that_cannot_be_read_is_malformed_xlsx(raw: bytes) -> None:
    with pytest.raises(MalformedInput) as refused:
        rows_of(raw, XLSX)
    assert refused.value.code == "malformed_xlsx"


def test_a_job_row_answers_as_the_bulk_verify_csv_does() -> None:
    """Pinned to ``presenters.verify_csv``: from ``at`` on, a job's result row is the bulk
    verify CSV's for the same result; ``plate`` and ``vin`` echo the row as uploaded."""
    at = datetime(2026, 11, 25, 2, tzinfo=UTC)
    until = at + timedelta(days=90)
    results = [
        VerifiedItem(Plate.parse("苏E12345"), None, at, CoverageStatus.ACTIVE, "PICC", until, ()),
        VerifiedItem(None, Vin.parse(VIN), at, CoverageStatus.NO_RECORD, None, None, ()),
        RejectedItem("plate", "x", None, InvalidPlate("no")),
    ]
    uploaded = [
        JobRow("苏E·12345", "", ""),
        JobRow("", VIN, "2026-11-25T10:00:00+08:00"),
        JobRow("x", "", ""),
        JobRow("", "", "", error="malformed_csv"),
    ]
    start = "2026-11-25T10:00:00+08:00"
    text = RESULT_HEADER + answer_rows(uploaded, results, start)
    ours = list(csv.reader(io.StringIO(text, newline="")))
    bulk = list(csv.reader(io.StringIO(verify_csv(results), newline="")))
    assert ours[0] == bulk[0] == list(RESULT_COLUMNS)
    assert [row[3:] for row in ours[1:4]] == [row[3:] for row in bulk[1:]]
    assert [row[2] for row in ours[1:3]] == [row[2] for row in bulk[1:3]]
    assert [row[:2] for row in ours[1:]] == [
        ["苏E·12345", ""],
        ["", VIN],
        ["x", ""],
        ["", ""],
    ]
    assert ours[3][2] == ours[4][2] == start  # an unread row is at the job's start
    assert ours[4][3:] == ["", "", "", "", "malformed_csv"]
