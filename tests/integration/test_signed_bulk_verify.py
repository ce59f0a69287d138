"""A bulk-verify JSON answer is signed whole (DESIGN §3.1 rule, issue 8 item 6), so a
police report can quote it; CSV answers stay a plain table. And after ``keys
rotate-signing`` a restarted server signs answers and certificates under the new kid
while what the old key signed still verifies against the JWKS."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.config import Settings
from ctplhub.security.answer_signing import canonical_json, verify_signed
from ctplhub.security.certificate_token import make_token
from ctplhub.security.keystore import add_signing_key
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
ITEMS = {
    "items": [
        {"plate": "苏E12345"},
        {"vin": VIN, "at": "2026-06-01T00:00:00+08:00"},
        {"plate": "not a plate"},
        {"plate": "苏E99999"},
    ],
    "purpose": "accident",
}


@pytest.fixture(autouse=True)
def covered(clock: Clock, picc: InsurerAccount) -> None:
    clock.now = NOW
    picc.api.report_event(
        event(
            policy_no="PDAA2026320500000001",
            coverage_start="2026-03-01T00:00:00+08:00",
            coverage_end="2027-03-01T00:00:00+08:00",
            occurred_at="2026-02-20T10:00:00+08:00",
        )
    )


def verify(client: TestClient, token: str) -> dict[str, object]:
    answer = client.post("/v1/coverage/verify", json=ITEMS, headers=bearer_headers(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_the_json_answer_carries_one_signature_over_the_whole_result(
    client: TestClient, police_token: str
) -> None:
    raw = client.post("/v1/coverage/verify", json=ITEMS, headers=bearer_headers(police_token))
    body = raw.json()
    jwks = client.get("/.well-known/ctplhub-keys.json").json()

    assert set(body) == {"results", "signature"}
    assert [r.get("covered") for r in body["results"]] == [True, True, None, False]
    assert body["signature"]["alg"] == "Ed25519"
    assert body["signature"]["kid"] == jwks["keys"][0]["kid"]
    assert verify_signed(body, jwks)
    # The text served is the JCS that was signed, with the signature as its last member.
    unsigned = {"results": body["results"]}
    assert raw.content.startswith(canonical_json(unsigned)[:-1])
    for change in ("covered", "status", "insurer_code"):
        forged = copy.deepcopy(body)
        forged["results"][0][change] = "x"
        assert not verify_signed(forged, jwks)
    reordered = copy.deepcopy(body)
    reordered["results"].reverse()
    assert not verify_signed(reordered, jwks)


def test_the_csv_answer_is_unchanged_and_unsigned(client: TestClient, police_token: str) -> None:
    answer = client.post(
        "/v1/coverage/verify",
        content="plate,vin,at\n苏E12345,,\n".encode(),
        headers={
            **bearer_headers(police_token),
            "Content-Type": "text/csv",
            "Accept": "text/csv",
        },
    )

    assert answer.status_code == 200
    lines = answer.text.splitlines()
    assert lines[0] == "plate,vin,at,covered,status,insurer_code,covered_until,error"
    assert len(lines) == 2
    assert "signature" not in answer.text


def certificate_token(certificate: dict[str, Any]) -> str:
    unsigned = {k: v for k, v in certificate.items() if k != "signature"}
    raw = base64.b64decode(certificate["signature"]["value"])
    return make_token(canonical_json(unsigned), raw)


def test_after_rotate_signing_a_restarted_server_signs_under_the_new_kid(
    client: TestClient, container: Container, police_token: str, settings: Settings, clock: Clock
) -> None:
    old_answer = verify(client, police_token)
    old_token = client.post(
        "/v1/certificates", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
    ).json()["token"]
    old_kid = container.signer.active_kid

    add_signing_key(settings.home)
    fresh = build_container(settings, clock=clock)
    try:
        with TestClient(build_app(fresh)) as restarted:
            jwks = restarted.get("/.well-known/ctplhub-keys.json").json()
            new_answer = verify(restarted, police_token)
            certificate = restarted.post(
                "/v1/certificates", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
            ).json()["certificate"]
            old_check = restarted.post("/v1/certificates/verify", json={"token": old_token})
    finally:
        fresh.close()

    new_kid = fresh.signer.active_kid
    assert new_kid != old_kid
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    assert old_answer["signature"]["kid"] == old_kid  # type: ignore[index]
    assert verify_signed(old_answer, jwks)
    assert new_answer["signature"]["kid"] == new_kid  # type: ignore[index]
    assert verify_signed(new_answer, jwks)
    assert certificate["kid"] == certificate["signature"]["kid"] == new_kid
    assert old_check.json()["valid"] is True
    assert old_check.json()["live"]["covered"] is True
    # The server that is not restarted still signs with the key it loaded at start, but
    # already publishes the new kid and accepts certificates the restarted one signs.
    assert verify(client, police_token)["signature"]["kid"] == old_kid  # type: ignore[index]
    running_jwks = client.get("/.well-known/ctplhub-keys.json").json()
    assert {k["kid"] for k in running_jwks["keys"]} == {old_kid, new_kid}
    assert verify_signed(new_answer, running_jwks)
    new_token = certificate_token(certificate)
    assert client.post("/v1/certificates/verify", json={"token": new_token}).json()["valid"]
