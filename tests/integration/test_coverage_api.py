"""POST /v1/coverage/query and /v1/coverage/verify against stored events (DESIGN §2.5, §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.security.answer_signing import verify_signed
from helpers import VIN, VIN_B, Clock, InsurerAccount, bearer_headers, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
THIS_YEAR = {
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


def query(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/coverage/query", json=body)


def test_verified_answer_is_complete_masked_and_signed(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    answer = query(client, plate="苏e 12345", vin_last6=VIN[-6:])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["plate"] == "苏E·12345"
    assert body["vin_masked"] == VIN[:11] + "******"
    assert (body["status"], body["status_text"]) == ("ACTIVE", "保障中")
    assert body["at"] == body["as_of"] == "2026-11-25T10:00:00+08:00"
    assert body["covered_until"] == "2027-03-01T00:00:00+08:00"
    assert body["days_to_expiry"] == 95
    assert body["current_policy"] == {
        "insurer_code": "PICC",
        "insurer_name": "中国人民财产保险",
        "policy_no_masked": "…0001",
        "coverage_start": "2026-03-01T00:00:00+08:00",
        "coverage_end": "2027-03-01T00:00:00+08:00",
    }
    assert body["next_policy"] is None
    assert body["flags"] == {"duplicate_coverage": False, "gaps": []}
    assert body["sources"][0]["insurer_code"] == "PICC"
    assert body["sources"][0]["stale"] is False
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    assert verify_signed(body, jwks)
    body["days_to_expiry"] = 300
    assert not verify_signed(body, jwks)
    # Nothing personal leaks into the answer.
    for secret in ("张伟", "11010519491231002X", "13812345678", VIN):
        assert secret not in answer.text


def test_wrong_factor_answers_exactly_like_a_missing_plate(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    wrong = query(client, plate="苏E12345", vin_last6="000000")
    missing = query(client, plate="苏E99999", vin_last6=VIN[-6:])
    wrong_id = query(client, plate="苏E12345", owner_id_number="11010519491231003X")
    assert wrong.status_code == missing.status_code == wrong_id.status_code == 404
    assert wrong.json() == missing.json() == wrong_id.json()
    assert wrong.json()["error"]["code"] == "not_found"


def test_owner_id_number_is_a_verification_factor(picc: InsurerAccount, client: TestClient) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    answer = query(client, plate="苏E12345", owner_id_number="11010519491231002x")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ACTIVE"


def test_unverified_query_says_only_covered_or_not(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    body = query(client, plate="苏E12345").json()
    assert body == {
        "plate": "苏E·12345",
        "covered": True,
        "status_class": "COVERED",
        "caveats": [],
    }
    assert query(client, plate="苏E99999").json()["status_class"] == "NO_RECORD"


def test_renewal_at_another_insurer_is_renewed(
    make_insurer: Any, picc: InsurerAccount, client: TestClient
) -> None:
    pingan = make_insurer("PINGAN", "中国平安财产保险")
    picc.api.report_event(event(**THIS_YEAR))
    pingan.api.report_event(
        event(
            insurer_code="PINGAN",
            policy_no="PA2027000001",
            occurred_at="2026-11-20T09:00:00+08:00",
            coverage_start="2027-03-01T00:00:00+08:00",
            coverage_end="2028-03-01T00:00:00+08:00",
        )
    )
    body = query(client, plate="苏E12345", vin_last6=VIN[-6:]).json()
    assert (body["status"], body["status_text"]) == ("RENEWED", "已续保")
    assert body["covered_until"] == "2028-03-01T00:00:00+08:00"
    assert body["current_policy"]["insurer_code"] == "PICC"
    assert body["next_policy"] == {
        "insurer_code": "PINGAN",
        "coverage_start": "2027-03-01T00:00:00+08:00",
        "coverage_end": "2028-03-01T00:00:00+08:00",
    }
    assert body["flags"]["duplicate_coverage"] is False


def test_lapsed_vehicle_reports_since_when(picc: InsurerAccount, client: TestClient) -> None:
    picc.api.report_event(event())  # [2025-03-01, 2026-03-01)
    body = query(client, plate="苏E12345", vin_last6=VIN[-6:]).json()
    assert body["status"] == "LAPSED"
    assert body["lapsed_since"] == "2026-03-01T00:00:00+08:00"
    assert body["days_lapsed"] == 269
    assert body["flags"]["gaps"] == [
        {"from": "2026-03-01T00:00:00+08:00", "to": "2026-11-25T10:00:00+08:00"}
    ]
    assert query(client, plate="苏E12345").json()["status_class"] == "NOT_COVERED"


def test_plate_moved_to_another_vehicle_resolves_by_the_instant_asked(
    picc: InsurerAccount, client: TestClient
) -> None:
    # Vehicle A carried 苏E12345 last year, then was re-plated 苏E77777 this year ...
    picc.api.report_event(event())
    picc.api.report_event(
        event(
            policy_no="PDAA2026000002",
            plate="苏E77777",
            **THIS_YEAR,
        )
    )
    # ... and vehicle B was issued the freed plate 苏E12345 later this year.
    picc.api.report_event(
        event(
            policy_no="PDAA2026000003",
            vin=VIN_B,
            owner_id_number="11010519491231002X",
            occurred_at="2026-06-01T09:00:00+08:00",
            coverage_start="2026-06-02T00:00:00+08:00",
            coverage_end="2027-06-02T00:00:00+08:00",
        )
    )
    now_b = query(client, plate="苏E12345", vin_last6=VIN_B[-6:])
    assert now_b.status_code == 200
    assert now_b.json()["current_policy"]["policy_no_masked"] == "…0003"
    # Today the plate is B's, so A's VIN tail does not match it ...
    assert query(client, plate="苏E12345", vin_last6=VIN[-6:]).status_code == 404
    # ... but at an accident date last year the plate was A's.
    then = query(client, plate="苏E12345", vin_last6=VIN[-6:], at="2025-08-01T12:00:00+08:00")
    assert then.status_code == 200
    assert then.json()["status"] == "RENEWED"
    assert then.json()["at"] == "2025-08-01T12:00:00+08:00"
    assert query(client, plate="苏E77777", vin_last6=VIN[-6:]).json()["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plate": "XE12345"}, 400, "invalid_plate"),
        ({"plate": "苏E12345", "at": "2026-01-01T00:00:00"}, 400, "invalid_instant"),
        ({"plate": "苏E12345", "at": "yesterday"}, 400, "invalid_instant"),
        ({"plate": 12345}, 400, "validation_failed"),
        ({"vin_last6": "183294"}, 400, "validation_failed"),
        ({"plate": "苏E12345", "colour": "blue"}, 400, "validation_failed"),
        (
            {"plate": "苏E12345", "vin_last6": "183294", "owner_id_number": "x"},
            400,
            "validation_failed",
        ),
    ],
)
def test_bad_queries_are_clear_400s(
    client: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    answer = client.post("/v1/coverage/query", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_query_body_must_be_json(client: TestClient) -> None:
    malformed = client.post(
        "/v1/coverage/query", content=b"{plate", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    form = client.post("/v1/coverage/query", data={"plate": "苏E12345"})
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"


def test_bulk_verify_answers_in_order_with_an_error_per_bad_item(
    picc: InsurerAccount, client: TestClient, police_token: str
) -> None:
    picc.api.report_event(event())
    picc.api.report_event(event(policy_no="PDAA2026000002", **THIS_YEAR))
    items = [
        {"plate": "苏E12345"},
        {"plate": "苏E12345", "at": "2025-12-31T23:00:00+08:00"},
        {"vin": VIN, "at": "2024-01-01T00:00:00+08:00"},
        {"plate": "粤B·D12345"},
        {"plate": "not a plate"},
        {"vin": VIN_B},
    ]
    answer = client.post(
        "/v1/coverage/verify", json={"items": items}, headers=bearer_headers(police_token)
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r.get("plate") or r.get("vin") for r in results] == [
        "苏E·12345",
        "苏E·12345",
        VIN,
        "粤B·D12345",
        "not a plate",
        VIN_B,
    ]
    assert [r["covered"] for r in results] == [True, True, False, False, None, False]
    assert [r["status"] for r in results] == [
        "ACTIVE",
        "RENEWED",
        "PENDING_START",
        "NO_RECORD",
        None,
        "NO_RECORD",
    ]
    assert results[0]["insurer_code"] == "PICC"
    assert results[0]["covered_until"] == "2027-03-01T00:00:00+08:00"
    assert results[4]["error"]["code"] == "invalid_plate"


def test_bulk_verify_accepts_csv_and_can_answer_csv(
    picc: InsurerAccount, client: TestClient, police_token: str
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    csv_body = "plate,vin,at\n苏E12345,,\n,LSVAU218XN2183294,2020-01-01T00:00:00+08:00\nXE1,,\n"
    headers = {**bearer_headers(police_token), "Content-Type": "text/csv"}
    as_json = client.post("/v1/coverage/verify", content=csv_body.encode(), headers=headers)
    assert [r["covered"] for r in as_json.json()["results"]] == [True, False, None]
    as_csv = client.post(
        "/v1/coverage/verify",
        content=csv_body.encode(),
        headers={**headers, "Accept": "text/csv"},
    )
    lines = as_csv.text.strip().splitlines()
    assert lines[0].startswith("plate,vin,at,covered,status")
    assert lines[1] == (
        "苏E·12345,,2026-11-25T10:00:00+08:00,true,ACTIVE,PICC,2027-03-01T00:00:00+08:00,"
    )
    assert lines[2] == ",LSVAU218XN2183294,2020-01-01T00:00:00+08:00,false,PENDING_START,,,"
    assert lines[3] == "XE1,,,,,,,invalid_plate"


def test_bulk_verify_needs_a_police_or_regulator_token(
    client: TestClient, container: Container
) -> None:
    body = {"items": [{"plate": "苏E12345"}]}
    missing = client.post("/v1/coverage/verify", json=body)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_token")
    wrong = client.post("/v1/coverage/verify", json=body, headers=bearer_headers("ctp_nope"))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_token")
    agent = container.users.add("agent-7", "agent")
    denied = client.post("/v1/coverage/verify", json=body, headers=bearer_headers(agent))
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "role_not_allowed")
    regulator = container.users.add("reg-1", "regulator")
    assert (
        client.post("/v1/coverage/verify", json=body, headers=bearer_headers(regulator)).status_code
        == 200
    )


def test_bulk_verify_refuses_more_than_ten_thousand_items(
    client: TestClient, police_token: str
) -> None:
    items = [{"plate": "苏E12345"}] * 10_001
    answer = client.post(
        "/v1/coverage/verify", json={"items": items}, headers=bearer_headers(police_token)
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_a_verify_csv_that_is_not_utf8_is_a_clear_400(
    client: TestClient, police_token: str
) -> None:
    answer = client.post(
        "/v1/coverage/verify",
        content=b"plate,vin,at\n\xff,,\n",
        headers={**bearer_headers(police_token), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "malformed_csv"


def test_a_bare_carriage_return_in_a_verify_csv_ends_a_row(
    client: TestClient, police_token: str
) -> None:
    # It used to be a 500. A lone CR is a line break to CSV readers (and to Excel): the
    # two halves are answered as the two rows they are.
    answer = client.post(
        "/v1/coverage/verify",
        content="plate,vin,at\n苏E1\r2345,,\n苏E12345,,\n".encode(),
        headers={**bearer_headers(police_token), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        "invalid_plate",
        "invalid_plate",
        None,
    ]
    assert results[2]["status"] == "NO_RECORD"


def test_verify_errors_echo_only_strings(client: TestClient, police_token: str) -> None:
    items = [{"vin": 0}, {"plate": ["苏E12345"], "at": 5}, {"plate": "XE1", "at": "bad"}]
    answer = client.post(
        "/v1/coverage/verify", json={"items": items}, headers=bearer_headers(police_token)
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r.get("vin"), r.get("plate"), r["at"]) for r in results] == [
        (None, None, None),
        (None, None, None),
        (None, "XE1", "bad"),
    ]
    assert [r["error"]["code"] for r in results] == [
        "invalid_vin",
        "invalid_plate",
        "invalid_plate",
    ]
