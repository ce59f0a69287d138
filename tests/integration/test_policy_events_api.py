"""POST /v1/policy-events: signing, idempotency, conflicts, version rules, bad input."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.client import CtplHubError
from ctplhub.security.request_signing import signed_headers
from ctplhub.store.tables import policies, policy_events
from helpers import InsurerAccount, event


def count_events(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(policy_events)).scalar_one())


def test_first_report_is_201_and_identical_repeat_is_200_with_same_body(
    picc: InsurerAccount, client: TestClient, container: Container
) -> None:
    first = picc.api.request("POST", "/v1/policy-events", json=event())
    assert first.status_code == 201, first.text
    # Same instant written in UTC, plate in another spelling: same content after parsing.
    again = picc.api.request(
        "POST",
        "/v1/policy-events",
        json=event(occurred_at="2025-02-20T02:30:00Z", plate="苏e 12345"),
    )
    assert again.status_code == 200
    assert again.json() == first.json()
    assert count_events(container) == 1


def test_same_key_other_content_is_409_conflict(picc: InsurerAccount, container: Container) -> None:
    picc.api.report_event(event())
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event(premium="1100.00"))
    assert (caught.value.status, caught.value.code) == (409, "conflict")
    assert count_events(container) == 1


def test_version_after_surrender_is_policy_closed(
    picc: InsurerAccount, container: Container
) -> None:
    picc.api.report_event(event())
    picc.api.report_event(
        event(version=2, event_type="surrender", effective_at="2025-06-01T00:00:00+08:00")
    )
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event(version=3, event_type="endorse", plate="苏E54321"))
    assert (caught.value.status, caught.value.code) == (409, "policy_closed")
    assert count_events(container) == 2


def test_lower_version_is_stored_but_changes_nothing(
    picc: InsurerAccount, container: Container
) -> None:
    picc.api.report_event(
        event(version=2, event_type="endorse", coverage_end="2026-02-01T00:00:00+08:00")
    )
    picc.api.report_event(event(version=1))
    with container.engine.connect() as conn:
        head = conn.execute(select(policies.c.version, policies.c.event_type)).one()
    assert tuple(head) == (2, "endorse")
    assert count_events(container) == 2


def test_a_cancel_arriving_after_a_higher_version_still_rules(
    picc: InsurerAccount, container: Container
) -> None:
    picc.api.report_event(event(version=3, event_type="endorse", premium="990.00"))
    picc.api.report_event(event(version=2, event_type="cancel"))
    picc.api.report_event(
        event(version=1, event_type="surrender", effective_at="2025-06-01T00:00:00+08:00")
    )
    with container.engine.connect() as conn:
        head = conn.execute(select(policies.c.version, policies.c.event_type)).one()
    assert tuple(head) == (1, "surrender")  # the lowest-versioned final event rules
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event(version=2, event_type="endorse", premium="1.00"))
    assert caught.value.code == "conflict"  # version 2 is stored, with other content
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event(version=4, event_type="endorse"))
    assert caught.value.code == "policy_closed"
    assert count_events(container) == 3


def test_personal_data_is_encrypted_at_rest(picc: InsurerAccount, container: Container) -> None:
    picc.api.report_event(event())
    with container.engine.connect() as conn:
        row = conn.execute(select(policy_events)).one()._mapping
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    for secret in ("张伟".encode(), b"11010519491231002X", b"13812345678"):
        assert secret not in stored


def test_other_insurers_code_is_403(make_insurer: object, picc: InsurerAccount) -> None:
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event(insurer_code="PINGAN"))
    assert (caught.value.status, caught.value.code) == (403, "insurer_mismatch")


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h: h.update({"X-CTPL-Key": "nobody"}), "unknown_key"),
        (lambda h: h.update({"X-CTPL-Timestamp": str(int(time.time()) - 301)}), "stale_timestamp"),
        (lambda h: h.update({"X-CTPL-Signature": "0" * 64}), "bad_signature"),
        (lambda h: h.pop("X-CTPL-Signature"), "missing_signature"),
    ],
)
def test_bad_signatures_are_401_with_distinct_codes(
    picc: InsurerAccount, client: TestClient, container: Container, mutate: object, code: str
) -> None:
    body = json.dumps(event()).encode()
    headers = signed_headers(picc.key_id, picc.secret, "POST", "/v1/policy-events", body)
    mutate(headers)  # type: ignore[operator]
    headers["Content-Type"] = "application/json"
    answer = client.post("/v1/policy-events", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == code
    assert count_events(container) == 0


def test_replayed_nonce_is_401(picc: InsurerAccount, client: TestClient) -> None:
    body = json.dumps(event()).encode()
    headers = signed_headers(picc.key_id, picc.secret, "POST", "/v1/policy-events", body)
    headers["Content-Type"] = "application/json"
    assert client.post("/v1/policy-events", content=body, headers=headers).status_code == 201
    replay = client.post("/v1/policy-events", content=body, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"


def test_suspended_insurer_is_403_not_certified(picc: InsurerAccount, container: Container) -> None:
    container.insurers.set_status("PICC", "suspended", reason="audit", actor="regulator-1")
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event())
    assert (caught.value.status, caught.value.code) == (403, "insurer_not_certified")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[1, 2]", "application/json", 400, "validation_failed"),
        (json.dumps(event(version="two")).encode(), "application/json", 400, "validation_failed"),
        (json.dumps(event(plate="XE12345")).encode(), "application/json", 400, "invalid_plate"),
        (
            json.dumps(event(vin="LSVAU2180N2183294")).encode(),
            "application/json",
            400,
            "invalid_vin",
        ),
        (
            json.dumps(event(owner_id_number="110105194912310021")).encode(),
            "application/json",
            400,
            "invalid_id_number",
        ),
        (
            json.dumps(event(coverage_start="2025-03-01T00:00:00")).encode(),
            "application/json",
            400,
            "invalid_instant",
        ),
        (json.dumps({"policy_no": "X"}).encode(), "application/json", 400, "validation_failed"),
        (json.dumps(event()).encode(), "text/plain", 415, "unsupported_media_type"),
        (
            json.dumps(event(owner_name="张" * 70_000)).encode(),
            "application/json",
            413,
            "payload_too_large",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    picc: InsurerAccount,
    container: Container,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    answer = picc.api.request("POST", "/v1/policy-events", content=body, content_type=content_type)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]
    assert count_events(container) == 0
