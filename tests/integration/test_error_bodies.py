"""Errors never carry a stack trace or the personal data that was sent (issue 7, item 5):
every error body is exactly ``{"error": {"code", "message", "details"?}}``, a 500 names a
request id and nothing else, and no ID number, VIN or name sent in a request comes back
in an error, whether the error is the whole answer or one line of a batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from helpers import RESIDENT_ID, VIN, InsurerAccount, bearer_headers, event

NAME = "欧阳娜娜"
OTHER_ID = "110105198001010014"  # a resident ID with a valid check character
BAD_ID = OTHER_ID[:-1] + "5"  # ... and with a wrong one
BAD_VIN = VIN[:8] + "0" + VIN[9:]  # wrong check digit
PERSONAL = (NAME, OTHER_ID, BAD_ID, VIN, BAD_VIN, VIN[-6:], RESIDENT_ID, "13912345678")
TRACE_MARKS = (
    "Traceback",
    'File "',
    ", in <",
    "sqlalchemy",
    "sqlite3",
    "psycopg",
    "SELECT ",
    "INSERT ",
)


def assert_clean_error(answer: httpx.Response, what: str) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}, what
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, what
    assert isinstance(error["code"], str) and error["code"].islower(), what
    assert_clean(body, what)
    return dict(error)


def assert_clean(value: Any, what: str) -> None:
    written = json.dumps(value, ensure_ascii=False)
    leaked = [item for item in PERSONAL if item in written]
    assert not leaked, f"{what} echoes personal data: {written[:300]}"
    traced = [mark for mark in TRACE_MARKS if mark in written]
    assert not traced, f"{what} carries a stack trace or SQL: {written[:300]}"


def test_every_4xx_body_has_only_code_message_details_and_no_personal_data(
    client: TestClient, picc: InsurerAccount, police_token: str
) -> None:
    picc.api.report_event(event())
    query = "/v1/coverage/query"
    answers = {
        "wrong ID check character": client.post(
            query, json={"plate": "苏E12345", "owner_id_number": BAD_ID}
        ),
        "ID of another owner": client.post(
            query, json={"plate": "苏E12345", "owner_id_number": OTHER_ID}
        ),
        "VIN tail of another car": client.post(
            query, json={"plate": "苏E12345", "vin_last6": BAD_VIN[-6:][::-1]}
        ),
        "both factors": client.post(
            query, json={"plate": "苏E12345", "vin_last6": VIN[-6:], "owner_id_number": OTHER_ID}
        ),
        "a name where none belongs": client.post(
            query, json={"plate": "苏E12345", "owner_name": NAME, "vin_last6": VIN[-6:]}
        ),
        "a factor of the wrong type": client.post(
            query, json={"plate": "苏E12345", "owner_id_number": [OTHER_ID]}
        ),
        "instant past the range": client.post(
            query, json={"plate": "苏E12345", "vin_last6": VIN[-6:], "at": "9999-12-31T23:00Z"}
        ),
        "not JSON": client.post(
            query,
            content=f'{{"plate": "苏E12345", "owner_id_number": "{OTHER_ID}"'.encode(),
            headers={"Content-Type": "application/json"},
        ),
        "too large": client.post(
            query, json={"plate": "苏E12345", "owner_id_number": OTHER_ID * 5000}
        ),
        "access log, wrong factor": client.post(
            "/v1/coverage/access-log", json={"plate": "苏E12345", "owner_id_number": OTHER_ID}
        ),
        "event with a wrong VIN": picc.api.request(
            "POST", "/v1/policy-events", json=event(vin=BAD_VIN, owner_name=NAME, version=2)
        ),
        "event with a wrong ID": picc.api.request(
            "POST", "/v1/policy-events", json=event(owner_id_number=BAD_ID, version=2)
        ),
        "event with a mistyped name": picc.api.request(
            "POST", "/v1/policy-events", json=event(owner_name=[NAME], version=2)
        ),
        "event with a bad phone": picc.api.request(
            "POST", "/v1/policy-events", json=event(owner_phone=f"{NAME}13912345678", version=2)
        ),
        "same version, other content": picc.api.request(
            "POST", "/v1/policy-events", json=event(owner_name=NAME, owner_id_number=OTHER_ID)
        ),
        "unsigned event": client.post("/v1/policy-events", json=event(owner_name=NAME)),
        "verify without a token": client.post(
            "/v1/coverage/verify", json={"items": [{"vin": VIN}]}
        ),
    }
    for what, answer in answers.items():
        assert 400 <= answer.status_code < 500, (what, answer.status_code)
        assert_clean_error(answer, what)


def test_line_and_item_errors_do_not_echo_personal_data_either(
    client: TestClient, picc: InsurerAccount, police_token: str
) -> None:
    lines = [
        event(policy_no="P-1", vin=BAD_VIN, owner_name=NAME),
        event(policy_no="P-2", owner_id_number=BAD_ID, owner_name=NAME),
        event(policy_no="P-3", owner_phone="139-1234-5678-" + NAME),
    ]
    batch = picc.api.report_batch(lines)
    assert batch["rejected"] == 3
    for result in batch["results"]:
        assert_clean(result["error"], f"batch line {result['line']}")
    verify = client.post(
        "/v1/coverage/verify",
        json={"items": [{"vin": BAD_VIN}, {"vin": VIN[:16]}, {"plate": "苏E12345", "at": 0}]},
        headers=bearer_headers(police_token),
    )
    assert verify.status_code == 200
    for item in verify.json()["results"]:
        assert item["covered"] is None
        assert_clean(item["error"], f"verify item {item}")


@pytest.fixture
def broken_database(container: Container) -> Iterator[None]:
    """A fault nobody foresaw, for real: the table of policy events is gone, so the
    driver's errors (which quote SQL and parameters) are what the code meets."""
    with container.engine.begin() as conn:
        conn.execute(text("ALTER TABLE policy_events RENAME TO policy_events_away"))
    try:
        yield
    finally:
        with container.engine.begin() as conn:
            conn.execute(text("ALTER TABLE policy_events_away RENAME TO policy_events"))


def test_a_500_carries_a_request_id_and_nothing_else(
    client: TestClient, picc: InsurerAccount, broken_database: None
) -> None:
    answers = {
        "query": client.post(
            "/v1/coverage/query", json={"plate": "苏E12345", "owner_id_number": OTHER_ID}
        ),
        "event": picc.api.request("POST", "/v1/policy-events", json=event(owner_name=NAME)),
        "page": client.post("/", data={"plate": "苏E12345", "vin_last6": VIN[-6:]}),
    }
    for what, answer in answers.items():
        assert answer.status_code == 500, (what, answer.status_code, answer.text[:200])
        if what == "page":
            assert_clean(answer.text, what)
            continue
        error = assert_clean_error(answer, what)
        assert set(error) == {"code", "message"}, what
        assert error["code"] == "internal_error"
        assert answer.headers["x-request-id"] in error["message"]
