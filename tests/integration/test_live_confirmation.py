"""Live confirmation (DESIGN §10) against a real insurer endpoint: an HTTP server in a
thread of the test that answers, is slow, errs, or is not there at all.

Each test: PICC's policy ended on 2026-03-01; two days after its last sync (so PICC is
stale), a police verify at 2026-03-20 finds the vehicle ``LAPSED`` and asks PICC.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from ctplhub.bootstrap import Container
from ctplhub.security.request_signing import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    signature_matches,
)
from ctplhub.services.live_confirmation import CircuitBreaker
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

REPORTED = datetime(2026, 3, 18, 2, 0, tzinfo=UTC)  # PICC's last sync
VERIFIED = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)  # 48 h later: PICC is stale
LAST_YEAR = {
    "coverage_start": "2025-03-01T00:00:00+08:00",
    "coverage_end": "2026-03-01T00:00:00+08:00",
    "occurred_at": "2025-02-20T10:00:00+08:00",
}


class Insurer(BaseHTTPRequestHandler):
    """The insurer's confirm endpoint; what it does is the server's ``mode``."""

    server: InsurerServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.calls.append((self.path, dict(self.headers.items()), body))
        mode = self.server.mode
        try:
            if mode == "slow":
                time.sleep(3.0)
            if mode == "error":
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = json.dumps(
                {
                    "covered": True,
                    "policy_no": "PDAA2026NEW",
                    "coverage_end": "2027-03-01T00:00:00+08:00",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except OSError:  # the platform gave up on a slow answer and closed the connection
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class InsurerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Insurer)
        self.mode = "ok"
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ctpl/confirm?v=1"


@pytest.fixture
def insurer_server() -> Iterator[InsurerServer]:
    server = InsurerServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/confirm"


@pytest.fixture
def lapsed(picc: InsurerAccount, clock: Clock) -> InsurerAccount:
    clock.now = REPORTED
    picc.api.report_event(event(**LAST_YEAR))
    clock.now = VERIFIED
    return picc


def register(insurer: InsurerAccount, url: str | None, code: str | None = None) -> Any:
    path = f"/v1/insurers/{code or insurer.code}/confirm-endpoint"
    return insurer.api.request("PUT", path, json={"url": url})


def verify(client: TestClient, token: str, *items: dict[str, str]) -> tuple[list[Any], float]:
    started = time.perf_counter()
    answer = client.post(
        "/v1/coverage/verify",
        json={"items": list(items) or [{"plate": "苏E12345"}]},
        headers=bearer_headers(token),
    )
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return answer.json()["results"], elapsed


def caveat_codes(result: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(c["code"], c["insurer_code"]) for c in result.get("caveats", [])]


def test_an_answering_insurer_confirms_with_a_request_signed_by_its_own_key(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
) -> None:
    registered = register(lapsed, insurer_server.url)
    assert registered.status_code == 200, registered.text
    assert registered.json()["url"] == insurer_server.url
    (result,), elapsed = verify(client, police_token)
    assert result["status"] == "LAPSED"  # the registry's own status stays
    assert result["covered"] is True  # the insurer's word
    assert result["confirmed_by"]["insurer_code"] == "PICC"
    assert result["confirmed_by"]["covered"] is True
    assert result["confirmed_by"]["at"] == "2026-03-20T10:00:00+08:00"
    assert ("stale_insurer", "PICC") in caveat_codes(result)
    assert ("confirmation_unavailable", "PICC") not in caveat_codes(result)
    assert elapsed < 2.0
    (path, headers, body), *_ = insurer_server.calls
    assert path == "/ctpl/confirm?v=1"
    assert json.loads(body) == {"plate": "苏E·12345", "vin": VIN, "at": "2026-03-20T10:00:00+08:00"}
    assert headers[HEADER_KEY] == lapsed.key_id
    assert signature_matches(
        lapsed.secret,
        "POST",
        path,
        headers[HEADER_TIMESTAMP],
        headers[HEADER_NONCE],
        body,
        headers[HEADER_SIGNATURE],
    )
    assert not signature_matches(
        "another secret",
        "POST",
        path,
        headers[HEADER_TIMESTAMP],
        headers[HEADER_NONCE],
        body,
        headers[HEADER_SIGNATURE],
    )


def test_a_slow_insurer_leaves_the_registry_answer_with_a_caveat_within_two_seconds(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
) -> None:
    register(lapsed, insurer_server.url)
    insurer_server.mode = "slow"
    (result,), elapsed = verify(client, police_token)
    assert elapsed < 2.0
    assert len(insurer_server.calls) == 1  # it was asked, and did not answer in 1.5 s
    assert (result["status"], result["covered"]) == ("LAPSED", False)
    assert "confirmed_by" not in result
    assert ("confirmation_unavailable", "PICC") in caveat_codes(result)
    message = next(
        c["message"] for c in result["caveats"] if c["code"] == "confirmation_unavailable"
    )
    assert "1.5 s" in message


def test_an_erring_insurer_opens_the_breaker_after_five_failures(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
    container: Container,
) -> None:
    register(lapsed, insurer_server.url)
    insurer_server.mode = "error"
    for _ in range(5):
        (result,), _elapsed = verify(client, police_token)
        assert (result["status"], result["covered"]) == ("LAPSED", False)
        assert ("confirmation_unavailable", "PICC") in caveat_codes(result)
    assert len(insurer_server.calls) == 5
    assert container.live_confirmation is not None
    assert container.live_confirmation.breaker.state("PICC") == "open"
    # Open: the insurer is not asked at all, the answer still carries the caveat.
    insurer_server.mode = "ok"
    (result,), elapsed = verify(client, police_token)
    assert len(insurer_server.calls) == 5
    assert "confirmed_by" not in result
    message = next(
        c["message"] for c in result["caveats"] if c["code"] == "confirmation_unavailable"
    )
    assert "failed repeatedly" in message
    assert elapsed < 0.5


def test_a_down_insurer_answers_at_once_with_a_caveat(
    lapsed: InsurerAccount, closed_port_url: str, client: TestClient, police_token: str
) -> None:
    register(lapsed, closed_port_url)
    (result,), elapsed = verify(client, police_token)
    assert elapsed < 2.0
    assert (result["status"], result["covered"]) == ("LAPSED", False)
    assert ("confirmation_unavailable", "PICC") in caveat_codes(result)


def test_no_record_asks_every_stale_certified_insurer_with_an_endpoint(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
) -> None:
    register(lapsed, insurer_server.url)
    (result,), _elapsed = verify(client, police_token, {"plate": "苏E99999"})
    assert result["status"] == "NO_RECORD"
    assert result["confirmed_by"]["insurer_code"] == "PICC"
    assert result["covered"] is True
    (_path, _headers, body), *_ = insurer_server.calls
    assert json.loads(body) == {
        "plate": "苏E·99999",
        "vin": None,
        "at": "2026-03-20T10:00:00+08:00",
    }


def test_nobody_is_asked_when_the_insurer_is_fresh_or_has_no_endpoint(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
) -> None:
    (result,), _elapsed = verify(client, police_token)  # stale, but no endpoint
    assert "confirmed_by" not in result
    assert ("confirmation_unavailable", "PICC") not in caveat_codes(result)
    register(lapsed, insurer_server.url)
    lapsed.api.heartbeat("PICC")  # fresh again
    (result,), _elapsed = verify(client, police_token)
    assert result["status"] == "LAPSED" and "confirmed_by" not in result
    assert insurer_server.calls == []
    # A null url removes the endpoint.
    assert register(lapsed, None).json()["url"] is None


def test_only_the_insurer_itself_registers_a_valid_url(
    lapsed: InsurerAccount, make_insurer: Any, client: TestClient
) -> None:
    other = make_insurer("CPIC", "中国太平洋财产保险")
    refused = register(other, "https://example.cn/confirm", code="PICC")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insurer_mismatch"
    for bad in ("ftp://example.cn/x", "not a url", "https://user:pw@example.cn/", 5):
        answer = lapsed.api.request("PUT", "/v1/insurers/PICC/confirm-endpoint", json={"url": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["code"] == "validation_failed"
    extra = lapsed.api.request(
        "PUT", "/v1/insurers/PICC/confirm-endpoint", json={"url": None, "x": 1}
    )
    assert extra.status_code == 400
    unsigned = client.put("/v1/insurers/PICC/confirm-endpoint", json={"url": None})
    assert unsigned.status_code == 401


def test_many_items_with_a_slow_insurer_still_answer_within_two_seconds(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
) -> None:
    register(lapsed, insurer_server.url)
    insurer_server.mode = "slow"
    items = [{"plate": f"苏E{n:05d}"} for n in range(200)]  # 200 plates with no record
    results, elapsed = verify(client, police_token, *items)
    assert elapsed < 2.0
    assert len(results) == 200
    assert all(r["status"] == "NO_RECORD" and r["covered"] is False for r in results)
    assert all(("confirmation_unavailable", "PICC") in caveat_codes(r) for r in results)
    # 32 at a time to one insurer; the first four timeouts each free a slot before the
    # fifth opens the breaker, and no call goes after that.
    assert len(insurer_server.calls) <= 32 + 4


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in ``/metrics`` text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_calls_are_counted_in_metrics_and_logged_without_the_vehicle(
    lapsed: InsurerAccount,
    insurer_server: InsurerServer,
    client: TestClient,
    police_token: str,
    container: Container,
) -> None:
    assert container.live_confirmation is not None
    container.live_confirmation.breaker = CircuitBreaker(open_s=0.3)
    register(lapsed, insurer_server.url)
    before = client.get("/metrics").text
    insurer_server.mode = "error"
    with capture_logs() as logs:
        for _ in range(6):  # five failures open the breaker; the sixth is not sent
            verify(client, police_token)
    after = client.get("/metrics").text
    calls = "ctplhub_live_confirm_calls_total"
    assert (
        _sample(after, calls, insurer="PICC", result="http_500")
        - _sample(before, calls, insurer="PICC", result="http_500")
        == 5
    )
    assert (
        _sample(after, calls, insurer="PICC", result="circuit_open")
        - _sample(before, calls, insurer="PICC", result="circuit_open")
        == 1
    )
    assert _sample(after, "ctplhub_live_confirm_breaker_open", insurer="PICC") == 1
    assert _sample(after, "ctplhub_live_confirm_seconds_count", insurer="PICC") >= 5
    lines = [entry for entry in logs if entry["event"].startswith("live_confirm")]
    summaries = [entry for entry in lines if entry["event"] == "live_confirm"]
    assert [entry["results"] for entry in summaries] == [{"http_500": 1}] * 5 + [
        {"circuit_open": 1}
    ]
    assert [entry["event"] for entry in lines].count("live_confirm_breaker_open") == 1
    text = repr(lines)
    for secret in (VIN, "12345", "2026-03-20"):
        assert secret not in text
    # Answering again closes it, and says so.
    insurer_server.mode = "ok"
    time.sleep(0.35)  # the open period passes: the next call is the half-open trial
    with capture_logs() as logs:
        (result,), _ = verify(client, police_token)
    assert result["confirmed_by"]["covered"] is True
    assert "live_confirm_breaker_closed" in [entry["event"] for entry in logs]
    final = client.get("/metrics").text
    assert _sample(final, "ctplhub_live_confirm_breaker_open", insurer="PICC") == 0
