"""POST /v1/coverage/access-log, and the reads that fill it (DESIGN §3, §5.3): owners'
queries, the owner page, police bulk verify; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.store.repositories.access_log import access_log_table
from helpers import VIN, VIN_B, Clock, InsurerAccount, bearer_headers, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
THIS_YEAR = {
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}
VIN_C = with_vin_check_digit("LGBF5AE05KR100021")
FLEET = {"苏E·12345": VIN, "苏E·54321": VIN_B, "苏E·67890": VIN_C}


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


@pytest.fixture
def fleet(picc: InsurerAccount) -> None:
    for number, (plate, vin) in enumerate(FLEET.items(), start=1):
        picc.api.report_event(
            event(plate=plate, vin=vin, policy_no=f"PDAA202632050000000{number}", **THIS_YEAR)
        )


def listing(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/coverage/access-log", json=body)


def entries_of(client: TestClient, plate: str, vin: str) -> list[dict[str, str]]:
    answer = listing(client, plate=plate, vin_last6=vin[-6:])
    assert answer.status_code == 200, answer.text
    found: list[dict[str, str]] = answer.json()["entries"]
    return found


def rows(container: Container) -> list[Any]:
    with container.engine.connect() as conn:
        return list(conn.execute(select(access_log_table(container.engine))))


@pytest.mark.usefixtures("fleet")
def test_a_verified_query_is_listed_to_the_verified_owner(client: TestClient, clock: Clock) -> None:
    assert client.post(
        "/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
    ).is_success
    clock.advance(minutes=5)
    entries = entries_of(client, "苏E12345", VIN)
    # Newest first; the listing is itself a read of the vehicle's data.
    assert entries == [
        {"at": "2026-11-25T10:05:00+08:00", "actor_role": "owner", "purpose": "access_log_view"},
        {"at": "2026-11-25T10:00:00+08:00", "actor_role": "owner", "purpose": "coverage_query"},
    ]
    # The owner's ID number is a factor too.
    by_id = listing(client, plate="苏E·12345", owner_id_number="11010519491231002X")
    assert by_id.status_code == 200
    assert [e["purpose"] for e in by_id.json()["entries"]] == [
        "access_log_view",
        "access_log_view",
        "coverage_query",
    ]


@pytest.mark.usefixtures("fleet")
def test_bulk_verify_logs_one_entry_per_vehicle_with_the_callers_role(
    client: TestClient, container: Container, police_token: str
) -> None:
    items = [
        {"plate": "苏E12345"},
        {"plate": "苏E·54321"},
        {"vin": VIN_C},
        {"plate": "苏E12345", "at": "2026-06-01T00:00:00+08:00"},  # the same vehicle again
        {"plate": "苏E99999"},  # no vehicle: nothing read
        {"plate": "not a plate"},
    ]
    answer = client.post(
        "/v1/coverage/verify", json={"items": items}, headers=bearer_headers(police_token)
    )
    assert answer.status_code == 200, answer.text
    for plate, vin in FLEET.items():
        assert entries_of(client, plate, vin)[1:] == [
            {"at": "2026-11-25T10:00:00+08:00", "actor_role": "police", "purpose": "bulk_verify"}
        ]
    bulk = [row for row in rows(container) if row.purpose == "bulk_verify"]
    assert len(bulk) == 3
    assert {row.actor for row in bulk} == {"officer-001"}
    assert all(row.request_id for row in bulk)


@pytest.mark.usefixtures("fleet")
def test_a_regulators_csv_verify_is_logged_as_regulator(
    client: TestClient, container: Container
) -> None:
    token = container.users.add("inspector-7", "regulator")
    headers = {**bearer_headers(token), "Content-Type": "text/csv"}
    body = f"plate,vin,at\n苏E12345,,\n,{VIN_B},\n".encode()
    assert client.post("/v1/coverage/verify", content=body, headers=headers).status_code == 200
    assert entries_of(client, "苏E12345", VIN)[1]["actor_role"] == "regulator"
    assert entries_of(client, "苏E54321", VIN_B)[1]["actor_role"] == "regulator"


@pytest.mark.usefixtures("fleet")
def test_entries_of_other_vehicles_never_show(client: TestClient, police_token: str) -> None:
    for _ in range(3):
        client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    client.post(
        "/v1/coverage/verify",
        json={"items": [{"plate": "苏E12345"}]},
        headers=bearer_headers(police_token),
    )
    assert entries_of(client, "苏E54321", VIN_B) == [
        {"at": "2026-11-25T10:00:00+08:00", "actor_role": "owner", "purpose": "access_log_view"}
    ]
    assert len(entries_of(client, "苏E12345", VIN)) == 5


@pytest.mark.usefixtures("fleet")
def test_a_short_answer_about_a_vehicle_is_logged_as_a_status_lookup(client: TestClient) -> None:
    assert client.post("/v1/coverage/query", json={"plate": "苏E12345"}).is_success
    assert client.post("/v1/coverage/query", json={"plate": "苏E99999"}).is_success  # no vehicle
    assert [e["purpose"] for e in entries_of(client, "苏E12345", VIN)] == [
        "access_log_view",
        "coverage_status_lookup",
    ]


@pytest.mark.usefixtures("fleet")
def test_the_owner_page_query_is_logged(client: TestClient) -> None:
    page = client.post("/", data={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    assert page.status_code == 200
    assert [e["purpose"] for e in entries_of(client, "苏E12345", VIN)] == [
        "access_log_view",
        "coverage_query",
    ]


@pytest.mark.usefixtures("fleet")
def test_a_wrong_factor_answers_exactly_like_the_querys_404(client: TestClient) -> None:
    wrong = listing(client, plate="苏E12345", vin_last6="000000")
    unknown = listing(client, plate="苏E99999", vin_last6=VIN[-6:])
    query = client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": "000000"})
    assert wrong.status_code == unknown.status_code == query.status_code == 404
    assert wrong.json() == unknown.json() == query.json()
    assert wrong.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("fleet")
def test_a_factor_is_required_and_the_body_is_checked(client: TestClient) -> None:
    missing = listing(client, plate="苏E12345")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "validation_failed"
    extra = listing(client, plate="苏E12345", vin_last6=VIN[-6:], vin=VIN)
    assert extra.status_code == 400
    assert client.post("/v1/coverage/access-log", content=b"{").status_code in (400, 415)


@pytest.mark.usefixtures("fleet")
def test_wrong_factors_here_spend_the_verified_querys_budget(client: TestClient) -> None:
    """10 failed verifications per plate per hour (DESIGN §5.3), whichever endpoint."""
    for _ in range(10):
        assert listing(client, plate="苏E12345", vin_last6="000000").status_code == 404
    refused = client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert listing(client, plate="苏E12345", vin_last6=VIN[-6:]).status_code == 429


@pytest.mark.usefixtures("fleet")
def test_the_table_holds_no_vin_or_plate(
    client: TestClient, container: Container, police_token: str
) -> None:
    client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    client.post(
        "/v1/coverage/verify",
        json={"items": [{"vin": v} for v in FLEET.values()]},
        headers=bearer_headers(police_token),
    )
    entries_of(client, "苏E12345", VIN)
    stored = rows(container)
    assert len(stored) == 5
    for row in stored:
        assert len(row.vehicle_key) == 32
        text = repr((row.at, row.actor, row.actor_role, row.purpose, row.vehicle_key))
        for secret in (*FLEET.values(), *(v[-6:] for v in FLEET.values()), *FLEET, "苏E"):
            assert secret not in text
            assert secret.encode() not in row.vehicle_key
    logged = access_log_table(container.engine)
    with container.engine.connect() as conn:
        keys = conn.execute(select(func.count(func.distinct(logged.c.vehicle_key)))).scalar()
    assert keys == 3


@pytest.mark.usefixtures("fleet")
def test_two_apps_serving_one_container_at_once_each_write_and_stop_cleanly(
    client: TestClient, container: Container
) -> None:
    """Two event loops on one container (the browser tests run a server beside the test
    client): each has its own flusher, and the first to start may stop first."""
    question = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
    first = TestClient(build_app(container)).__enter__()
    second = TestClient(build_app(container)).__enter__()
    try:
        assert first.post("/v1/coverage/query", json=question).status_code == 200
        assert second.post("/v1/coverage/query", json=question).status_code == 200
    finally:
        first.__exit__(None, None, None)  # while the second still serves
    assert second.post("/v1/coverage/query", json=question).status_code == 200
    second.__exit__(None, None, None)
    assert len(entries_of(client, "苏E12345", VIN)) == 4  # three queries, this listing


@pytest.mark.usefixtures("fleet")
def test_an_owners_entry_carries_the_request_id_of_its_log_line(
    client: TestClient, container: Container
) -> None:
    question = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
    answer = client.post("/v1/coverage/query", json=question, headers={"X-Request-ID": "audit-7"})
    assert answer.status_code == 200
    container.access_log.flush_now()
    (row,) = rows(container)
    assert (row.actor_role, row.purpose, row.request_id) == ("owner", "coverage_query", "audit-7")


# --- bulk verify's purpose (DESIGN §3: a named account's reason code) -------------------

VERIFY = "/v1/coverage/verify"


def purposes_of(container: Container, actor: str) -> list[str]:
    container.access_log.flush_now()
    return sorted(row.purpose for row in rows(container) if row.actor == actor)


@pytest.mark.usefixtures("fleet")
def test_bulk_verify_logs_the_purpose_its_body_gives(
    client: TestClient, container: Container, police_token: str
) -> None:
    body = {"items": [{"plate": "苏E12345"}, {"vin": VIN_B}], "purpose": "accident"}
    answer = client.post(VERIFY, json=body, headers=bearer_headers(police_token))
    assert answer.status_code == 200, answer.text
    assert entries_of(client, "苏E12345", VIN)[1] == {
        "at": "2026-11-25T10:00:00+08:00",
        "actor_role": "police",
        "purpose": "accident",
    }
    assert purposes_of(container, "officer-001") == ["accident", "accident"]


@pytest.mark.usefixtures("fleet")
def test_bulk_verify_without_a_purpose_logs_bulk_verify(
    client: TestClient, container: Container, police_token: str
) -> None:
    police = bearer_headers(police_token)
    assert client.post(VERIFY, json={"items": [{"plate": "苏E12345"}]}, headers=police).is_success
    csv_headers = {**police, "Content-Type": "text/csv"}
    csv_body = f"plate,vin,at\n,{VIN_B},\n".encode()
    assert client.post(VERIFY, content=csv_body, headers=csv_headers).is_success
    assert purposes_of(container, "officer-001") == ["bulk_verify", "bulk_verify"]


@pytest.mark.usefixtures("fleet")
def test_a_csv_upload_gives_its_purpose_in_a_header(
    client: TestClient, container: Container
) -> None:
    token = container.users.add("inspector-7", "regulator")
    headers = {**bearer_headers(token), "Content-Type": "text/csv", "X-CTPL-Purpose": "inspection"}
    body = f"plate,vin,at\n苏E12345,,\n,{VIN_B},\n".encode()
    assert client.post(VERIFY, content=body, headers=headers).status_code == 200
    assert entries_of(client, "苏E54321", VIN_B)[1]["purpose"] == "inspection"
    assert purposes_of(container, "inspector-7") == ["inspection", "inspection"]


@pytest.mark.usefixtures("fleet")
def test_a_bad_purpose_is_refused_before_anything_is_read(
    client: TestClient, container: Container, police_token: str
) -> None:
    police = bearer_headers(police_token)
    items = [{"plate": "苏E12345"}]
    for purpose in ("", "Accident", "a", "x" * 41, "road side", "1st", "事故", None, 7, ["a"]):
        refused = client.post(VERIFY, json={"items": items, "purpose": purpose}, headers=police)
        assert refused.status_code == 400, purpose
        error = refused.json()["error"]
        assert error["code"] == "validation_failed"
        assert error["details"] == [
            {"field": "purpose", "problem": "2-40 of a-z, 0-9 and _, starting with a letter"}
        ]
    csv_headers = {**police, "Content-Type": "text/csv", "X-CTPL-Purpose": "Road-Side"}
    bad_header = client.post(VERIFY, content=b"plate\n\xe8\x8b\x8fE12345\n", headers=csv_headers)
    assert bad_header.status_code == 400
    assert bad_header.json()["error"]["details"][0]["field"] == "X-CTPL-Purpose"
    # With a JSON body the purpose is in the body: a header too would leave two to choose from.
    json_headers = {**police, "X-CTPL-Purpose": "accident"}
    both = client.post(VERIFY, json={"items": items, "purpose": "accident"}, headers=json_headers)
    assert both.status_code == 400
    assert both.json()["error"]["details"][0]["field"] == "X-CTPL-Purpose"
    assert purposes_of(container, "officer-001") == []


def test_the_published_verify_body_and_header_name_the_purpose(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    body = document["components"]["schemas"]["VerifyBody"]["properties"]["purpose"]
    assert (body["default"], body["pattern"]) == ("bulk_verify", "^[a-z][a-z0-9_]{1,39}$")
    operation = document["paths"]["/v1/coverage/verify"]["post"]
    (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
    assert (header["name"], header["required"]) == ("X-CTPL-Purpose", False)
