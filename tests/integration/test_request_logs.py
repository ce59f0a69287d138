"""What a request leaves behind (issue: the server was blind): an ``X-Request-ID`` on
every answer, one JSON log line per request, and for an unforeseen failure a 500 in the
one error shape plus its stack trace in the log, never a body or personal data."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
import structlog.testing
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.logs import configure_logging, flush_logs, info_line
from helpers import VIN, InsurerAccount, event

SECRETS = ("苏E12345", "苏E·12345", VIN, VIN[-6:], "张伟", "11010519491231002X")


@pytest.fixture
def logs() -> Iterator[io.BytesIO]:
    stream = io.BytesIO()
    configure_logging("INFO", stream=stream)
    yield stream
    configure_logging("INFO", stream=io.BytesIO())  # later tests log to nowhere


def lines(stream: io.BytesIO) -> list[dict[str, Any]]:
    flush_logs()
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_line_per_request_with_route_status_duration_and_id(
    logs: io.BytesIO, client: TestClient, picc: InsurerAccount
) -> None:
    picc.api.report_event(event())
    answer = client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    client.get("/v1/insurers/PICC/sync")  # 401: unsigned
    assert answer.status_code == 200
    requests = [line for line in lines(logs) if line["event"] == "request"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "/v1/policy-events", 201),
        ("POST", "/v1/coverage/query", 200),
        ("GET", "/v1/insurers/{code}/sync", 401),  # the template, not the path
    ]
    assert requests[1]["request_id"] == answer.headers["x-request-id"]
    assert all(r["duration_ms"] >= 0 and r["level"] == "info" and r["timestamp"] for r in requests)
    text = logs.getvalue().decode()
    assert not [secret for secret in SECRETS if secret in text]


def test_a_request_id_given_is_echoed_a_malformed_one_is_replaced(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.9:2"})
    assert given.headers["x-request-id"] == "lb-7f3a.9:2"
    for bad in ("x" * 65, "id with spaces", "a/b", "<script>"):
        replaced = client.get("/healthz", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"] not in (bad, "")
        assert len(replaced.headers["x-request-id"]) == 16
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    missing = client.get("/no/such/path")
    assert missing.status_code == 404 and missing.headers["x-request-id"]


# The API's query is answered by the direct routes, ahead of Starlette's error guard; the
# web page goes through the guard, which answers first and hands the failure on to be logged.
@pytest.mark.parametrize("route", ["/v1/coverage/query", "/"])
def test_an_unforeseen_failure_is_a_logged_500_without_personal_data(
    logs: io.BytesIO,
    client: TestClient,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    owner = SECRETS[4]  # a name, so that the source lines in the trace do not spell it

    async def broken(query: Any, *_: Any) -> Any:
        try:
            raise KeyError(VIN + owner)
        except KeyError as error:
            raise RuntimeError(f"could not answer for {query.plate}") from error

    monkeypatch.setattr(container.coverage, "query", broken)
    monkeypatch.setattr(container.coverage, "query_with_history", broken)  # the page's read
    question = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
    given = {"json": question} if route != "/" else {"data": question}
    answer = client.post(route, headers={"X-Request-ID": "trace-me-42"}, **given)
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "trace-me-42"
    error = answer.json()["error"]
    assert error["code"] == "internal_error" and "trace-me-42" in error["message"]
    logged = lines(logs)
    (failure,) = [line for line in logged if line["event"] == "unhandled_error"]
    assert failure["level"] == "error" and failure["request_id"] == "trace-me-42"
    assert failure["route"] == route and failure["error_type"] == "RuntimeError"
    trace = failure["traceback"]
    assert "broken" in trace and "builtins.KeyError" in trace and "builtins.RuntimeError" in trace
    (request,) = [line for line in logged if line["event"] == "request"]
    assert request["status"] == 500
    text = logs.getvalue().decode() + answer.text
    assert not [secret for secret in SECRETS if secret in text]


def test_the_request_line_is_rendered_as_structlog_renders_it(logs: io.BytesIO) -> None:
    """``info_line`` writes the request line itself while the JSON chain is configured:
    the same keys in the same order, the same timestamp format, as the chain's line."""
    logger = structlog.get_logger("ctplhub.http")
    fields = {"request_id": "r1", "method": "POST", "route": "/v1/x", "status": 200}
    logger.info("request", **fields)
    info_line(logger, "request", dict(fields))
    with structlog.testing.capture_logs() as captured:  # another chain: structlog's own path
        info_line(structlog.get_logger("ctplhub.http"), "request", dict(fields))
    by_structlog, by_hand = lines(logs)[-2:]
    assert list(by_hand) == list(by_structlog)
    assert by_hand == {**by_structlog, "timestamp": by_hand["timestamp"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", by_hand["timestamp"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", by_structlog["timestamp"])
    assert captured == [{**fields, "event": "request", "log_level": "info"}]
