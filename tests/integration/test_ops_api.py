"""Operations and public documents: health, metrics, OpenAPI, JWKS, error shape (DESIGN §3)."""

from __future__ import annotations

import copy

import pytest
from starlette.testclient import TestClient

from ctplhub.security.answer_signing import verify_signed
from helpers import VIN, InsurerAccount, event


def assert_error_shape(body: object, code: str) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "details"}


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    # One part without a replica or Redis: the primary database, which decides.
    assert ready.json() == {"status": "ready", "parts": {"database": {"status": "up"}}}


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_are_prometheus_text_counting_requests(client: TestClient) -> None:
    before = client.get("/metrics").text
    client.get("/healthz")
    client.get("/healthz")
    client.get("/v1/no-such-path")

    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert "# TYPE ctplhub_http_requests_total counter" in text
    assert "# TYPE ctplhub_http_request_seconds histogram" in text
    count = 'ctplhub_http_requests_total{route="/healthz",status="200"}'
    everything = 'ctplhub_http_request_seconds_bucket{le="+Inf",route="/healthz"}'
    was = _sample(before, count) if count in before else 0.0
    assert _sample(text, count) == was + 2
    assert _sample(text, everything) == _sample(
        text, 'ctplhub_http_request_seconds_count{route="/healthz"}'
    )
    assert _sample(text, 'ctplhub_http_requests_total{route="unmatched",status="404"}') >= 1
    buckets = [
        _sample(text, f'ctplhub_http_request_seconds_bucket{{le="{le}",route="/healthz"}}')
        for le in ("0.002", "0.01", "0.1", "1.0", "10.0", "+Inf")
    ]
    assert buckets == sorted(buckets)  # cumulative


def test_openapi_lists_the_v1_paths(client: TestClient) -> None:
    answer = client.get("/openapi.json")

    assert answer.status_code == 200
    paths = answer.json()["paths"]
    expected = {
        "/v1/policy-events": "post",
        "/v1/policy-events/batch": "post",
        "/v1/coverage/query": "post",
        "/v1/coverage/verify": "post",
        "/v1/insurers/{code}/heartbeat": "post",
        "/v1/insurers/{code}/sync": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from OpenAPI"


def test_docs_are_html(client: TestClient) -> None:
    answer = client.get("/docs")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in answer.text


def test_jwks_keys_verify_a_signed_answer_and_reject_a_tampered_one(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event())
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert (key["kty"], key["crv"]) == ("OKP", "Ed25519")
        assert key["kid"] and key["x"]
        assert "d" not in key  # never the private half

    answer = client.post(
        "/v1/coverage/query",
        json={"plate": "苏E12345", "vin_last6": VIN[-6:], "at": "2025-06-01T00:00:00+08:00"},
    ).json()

    assert answer["signature"]["kid"] in {k["kid"] for k in jwks["keys"]}
    assert verify_signed(answer, jwks)
    tampered = copy.deepcopy(answer)
    tampered["status"] = "LAPSED"
    assert not verify_signed(tampered, jwks)
    reordered = dict(reversed(list(answer.items())))  # JCS: key order does not matter
    assert verify_signed(reordered, jwks)


def test_unknown_path_is_404_with_the_error_shape(client: TestClient) -> None:
    answer = client.get("/v1/no-such-thing")

    assert answer.status_code == 404
    assert_error_shape(answer.json(), "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/policy-events"), ("DELETE", "/healthz"), ("PUT", "/v1/coverage/query")],
)
def test_wrong_method_is_405_with_the_error_shape(
    client: TestClient, method: str, path: str
) -> None:
    answer = client.request(method, path)

    assert answer.status_code == 405
    assert_error_shape(answer.json(), "method_not_allowed")
