"""E-certificates over HTTP (DESIGN §6.1), on SQLite and PostgreSQL: issued to a verified
owner like a verified query (same 404, same 400, throttled, access-logged), checked by
anyone, a surrender since exposed by the live status, and the token is what §6.1 says."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.security.answer_signing import verify_signed
from helpers import VIN, VIN_B, Clock, InsurerAccount, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
POLICY = "PDAA2026320500000001"
THIS_YEAR = {
    "policy_no": POLICY,
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}
OWNER = {"plate": "苏E12345", "vin_last6": VIN[-6:]}


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


@pytest.fixture
def covered(picc: InsurerAccount) -> None:
    picc.api.report_event(event(**THIS_YEAR))


def issue(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/certificates", json=body)


def check(client: TestClient, token: object) -> Any:
    return client.post("/v1/certificates/verify", json={"token": token})


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def surrender(picc: InsurerAccount) -> None:
    picc.api.report_event(
        event(
            **{**THIS_YEAR, "occurred_at": "2026-11-25T09:00:00+08:00"},
            version=2,
            event_type="surrender",
            effective_at="2026-11-25T09:00:00+08:00",
        )
    )


@pytest.mark.usefixtures("covered")
def test_a_verified_owner_gets_a_signed_certificate_its_token_and_qr(
    client: TestClient,
) -> None:
    answer = issue(client, **OWNER)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    cert = body["certificate"]
    assert set(cert) == {
        "cert_id",
        "kid",
        "plate",
        "vin_masked",
        "insurer_code",
        "policy_no_masked",
        "coverage_start",
        "coverage_end",
        "issued_at",
        "signature",
    }
    assert cert["plate"] == "苏E·12345"
    assert cert["vin_masked"] == VIN[:11] + "******"
    assert cert["insurer_code"] == "PICC"
    assert cert["policy_no_masked"] == "…0001"
    assert cert["coverage_start"] == "2026-03-01T00:00:00+08:00"
    assert cert["coverage_end"] == "2027-03-01T00:00:00+08:00"
    assert cert["issued_at"] == "2026-11-25T10:00:00+08:00"
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    assert cert["kid"] == cert["signature"]["kid"] == jwks["keys"][0]["kid"]
    assert verify_signed(cert, jwks)
    # The token: base64url(JCS(certificate without signature)) "." base64url(signature).
    head, _, tail = body["token"].partition(".")
    assert "=" not in body["token"]
    unsigned = {k: v for k, v in cert.items() if k != "signature"}
    assert b64url_decode(head) == rfc8785.dumps(unsigned)
    assert b64url_decode(tail) == base64.b64decode(cert["signature"]["value"])
    assert body["qr_svg"].startswith("<svg") and "</svg>" in body["qr_svg"]


@pytest.mark.usefixtures("covered")
def test_checking_a_fresh_certificate_is_valid_and_covered_now(client: TestClient) -> None:
    issued = issue(client, **OWNER).json()

    answer = check(client, issued["token"])

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "valid": True,
        "certificate": issued["certificate"],
        "live": {"status": "ACTIVE", "covered": True, "as_of": "2026-11-25T10:00:00+08:00"},
    }


@pytest.mark.usefixtures("covered")
def test_a_policy_surrendered_since_keeps_its_signature_but_live_says_not_covered(
    client: TestClient, picc: InsurerAccount
) -> None:
    token = issue(client, **OWNER).json()["token"]
    surrender(picc)

    answer = check(client, token).json()

    assert answer["valid"] is True
    assert answer["live"]["covered"] is False
    assert answer["live"]["status"] == "LAPSED"


@pytest.mark.usefixtures("covered")
def test_live_follows_the_vehicle_to_whichever_insurer_covers_it_now(
    client: TestClient, picc: InsurerAccount, make_insurer: Any
) -> None:
    token = issue(client, **OWNER).json()["token"]
    surrender(picc)
    cpic = make_insurer("CPIC", "中国太平洋财产保险")
    cpic.api.report_event(
        event(
            insurer_code="CPIC",
            policy_no="CPIC0001",
            occurred_at="2026-11-25T09:30:00+08:00",
            coverage_start="2026-11-25T09:30:00+08:00",
            coverage_end="2027-11-25T09:30:00+08:00",
        )
    )

    live = check(client, token).json()["live"]

    assert live["covered"] is True


@pytest.mark.usefixtures("covered")
def test_a_tampered_certificate_is_invalid_and_tells_nothing(client: TestClient) -> None:
    issued = issue(client, **OWNER).json()
    head, _, tail = issued["token"].partition(".")
    forged = dict(issued["certificate"], coverage_end="2030-03-01T00:00:00+08:00")
    del forged["signature"]
    forged_head = base64.urlsafe_b64encode(rfc8785.dumps(forged)).rstrip(b"=").decode()

    answer = check(client, f"{forged_head}.{tail}")

    assert answer.status_code == 200
    assert answer.json() == {"valid": False, "certificate": None, "live": None}
    flipped = tail[:-2] + ("A" if tail[-2] != "A" else "B") + tail[-1]
    assert check(client, f"{head}.{flipped}").json()["valid"] is False


@pytest.mark.usefixtures("covered")
def test_a_well_formed_token_under_an_unknown_kid_is_not_valid(client: TestClient) -> None:
    issued = issue(client, **OWNER).json()
    _, _, tail = issued["token"].partition(".")
    other = dict(issued["certificate"], kid="sig-20200101-00000000")
    del other["signature"]
    head = base64.urlsafe_b64encode(rfc8785.dumps(other)).rstrip(b"=").decode()

    answer = check(client, f"{head}.{tail}")

    assert answer.status_code == 200
    assert answer.json()["valid"] is False


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        42,
        None,
        "no-dot-at-all",
        "a.b.c",
        "!!!.###",
        "YQ=.YQ",
        _b64(b"not json") + "." + _b64(bytes(64)),
        _b64(b"[1, 2]") + "." + _b64(bytes(64)),
        _b64(json.dumps({"cert_id": "x"}).encode()) + "." + _b64(bytes(64)),
        _b64(b'{"a": 1}') + "." + _b64(bytes(10)),
        "x" * 5000,
    ],
)
def test_a_malformed_token_is_400_invalid_token(client: TestClient, token: object) -> None:
    answer = check(client, token)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_token"


def test_a_verify_body_with_other_fields_is_validation_failed(client: TestClient) -> None:
    answer = client.post("/v1/certificates/verify", json={"token": "a.b", "plate": "x"})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "validation_failed"


@pytest.mark.usefixtures("covered")
def test_a_wrong_factor_is_404_exactly_like_an_unknown_plate(client: TestClient) -> None:
    wrong = issue(client, plate="苏E12345", vin_last6="000000")
    unknown = issue(client, plate="苏E99999", vin_last6=VIN[-6:])

    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("covered")
def test_no_factor_or_an_instant_is_validation_failed(client: TestClient) -> None:
    without = issue(client, plate="苏E12345")
    with_at = issue(client, **OWNER, at="2026-06-01T00:00:00+08:00")

    assert without.status_code == with_at.status_code == 400
    assert without.json()["error"]["code"] == with_at.json()["error"]["code"]
    assert with_at.json()["error"]["code"] == "validation_failed"


def test_a_vehicle_not_covered_now_gets_409_not_covered(
    client: TestClient, picc: InsurerAccount
) -> None:
    picc.api.report_event(
        event(
            plate="苏E54321",
            vin=VIN_B,
            coverage_start="2025-03-01T00:00:00+08:00",
            coverage_end="2026-03-01T00:00:00+08:00",
        )
    )

    answer = issue(client, plate="苏E54321", vin_last6=VIN_B[-6:])

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "not_covered"


@pytest.mark.usefixtures("covered")
def test_issues_and_checks_are_in_the_owners_access_log(client: TestClient) -> None:
    token = issue(client, **OWNER).json()["token"]
    check(client, token)

    entries = client.post("/v1/coverage/access-log", json=OWNER).json()["entries"]

    purposes = [e["purpose"] for e in entries]
    assert "certificate_issue" in purposes
    assert "certificate_verify" in purposes


@pytest.mark.usefixtures("covered")
def test_wrong_factors_count_against_the_plates_budget(client: TestClient) -> None:
    for _ in range(10):
        assert issue(client, plate="苏E12345", vin_last6="000000").status_code == 404

    answer = issue(client, **OWNER)

    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "rate_limited"


@pytest.mark.usefixtures("covered")
def test_the_qr_code_is_also_a_png_of_the_token_for_a_valid_one_only(
    client: TestClient,
) -> None:
    token = issue(client, **OWNER).json()["token"]

    png = client.post("/v1/certificates/qr", json={"token": token})
    head, _, tail = token.partition(".")
    forged = client.post("/v1/certificates/qr", json={"token": f"{head}.{tail[::-1]}"})

    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert io.BytesIO(png.content).getbuffer().nbytes > 200
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "invalid_token"


@pytest.mark.usefixtures("covered")
def test_a_certificate_unknown_to_the_registry_is_valid_without_live_status(
    client: TestClient, container: Container
) -> None:
    token = issue(client, **OWNER).json()["token"]
    from ctplhub.store.tables import certificates

    with container.engine.begin() as conn:
        conn.execute(certificates.delete())

    answer = check(client, token).json()

    assert answer["valid"] is True
    assert answer["live"] is None
