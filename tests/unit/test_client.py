"""The client against a real HTTP server that checks signatures from the bytes it received."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ctplhub.client import CtplHubClient, CtplHubError
from ctplhub.security import request_signing as rs

KEY_ID = "PICC-1a2b3c4d5e6f"
SECRET = "test-secret-test-secret-test-secret"


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHub:
    url: str
    received: list[Received] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name: value for name, value in self.headers.items()}
        self.server.hub.received.append(Received(self.command, self.path, headers, body))
        if self.headers.get(rs.HEADER_KEY) != KEY_ID:
            return self._error(401, "unknown_key", "unknown key")
        timestamp = self.headers.get(rs.HEADER_TIMESTAMP, "")
        if not rs.timestamp_fresh(timestamp, time.time()):
            return self._error(401, "stale_timestamp", "timestamp off")
        ok = rs.signature_matches(
            SECRET,
            self.command,
            self.path,  # the request target exactly as received, query string included
            timestamp,
            self.headers.get(rs.HEADER_NONCE, ""),
            body,
            self.headers.get(rs.HEADER_SIGNATURE, ""),
        )
        if not ok:
            return self._error(401, "bad_signature", "signature does not match")
        path = self.path.split("?")[0].removeprefix("/hub")
        if path == "/v1/policy-events" and json.loads(body).get("version") == 1:
            return self._error(409, "version_conflict", "版本冲突", {"expected": 2})
        if path == "/v1/policy-events":
            return self._json(201, {"status": "accepted", "echo": json.loads(body)})
        if path == "/v1/policy-events/batch":
            return self._json(200, {"accepted": body.count(b"\n"), "rejected": 0})
        if path.endswith("/heartbeat"):
            return self._json(200, {"ok": True, "echo": json.loads(body)})
        if path == "/v1/insurers/GATEWAY/sync":
            return self._send(502, b"<html>bad gateway</html>", "text/html")
        if path.endswith("/sync"):
            return self._json(200, {"insurer_code": path.split("/")[3]})
        return self._error(404, "not_found", "no route")

    def _error(self, status: int, code: str, message: str, details: Any = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if details is not None:
            error["details"] = details
        self._json(status, {"error": error})

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    hub: FakeHub


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hub = FakeHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server.hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client(hub: FakeHub) -> Iterator[CtplHubClient]:
    with CtplHubClient(hub.url, KEY_ID, SECRET, timeout=5) as client:
        yield client


EVENT = {"event_type": "ISSUED", "insurer_code": "PICC", "plate": "苏E·12345", "premium": 950}


def test_report_event_sends_signed_compact_utf8_json(client: CtplHubClient, hub: FakeHub) -> None:
    answer = client.report_event(EVENT)
    assert answer == {"status": "accepted", "echo": EVENT}
    [sent] = hub.received
    assert sent.body == json.dumps(EVENT, ensure_ascii=False, separators=(",", ":")).encode()
    assert "苏E·12345".encode() in sent.body
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.target == "/v1/policy-events"
    assert len(sent.headers[rs.HEADER_NONCE]) >= rs.MIN_NONCE_LEN


def test_wrong_secret_is_rejected_with_error_fields(hub: FakeHub) -> None:
    with (
        CtplHubClient(hub.url, KEY_ID, "wrong-secret") as client,
        pytest.raises(CtplHubError) as caught,
    ):
        client.report_event(EVENT)
    assert caught.value.status == 401
    assert caught.value.code == "bad_signature"
    assert caught.value.message == "signature does not match"


def test_request_does_not_raise(hub: FakeHub) -> None:
    with CtplHubClient(hub.url, "OTHER-000000000000", SECRET) as client:
        response = client.request("GET", "/v1/insurers/PICC/sync")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unknown_key"


def test_query_string_is_signed_as_sent(client: CtplHubClient, hub: FakeHub) -> None:
    response = client.request("GET", "/v1/disputes?status=open&page=2")
    assert response.status_code == 404  # signature accepted, then no such route
    assert hub.received[0].target == "/v1/disputes?status=open&page=2"


def test_non_ascii_path_is_signed_as_encoded(client: CtplHubClient, hub: FakeHub) -> None:
    assert client.sync("人保") == {"insurer_code": "%E4%BA%BA%E4%BF%9D"}
    assert client.request("GET", "/v1/x?q=a b").status_code == 404


def test_raw_content_with_content_type(client: CtplHubClient, hub: FakeHub) -> None:
    body = "a,b\n1,苏E\n".encode()
    response = client.request(
        "POST", "/v1/policy-events/batch", content=body, content_type="text/csv"
    )
    assert response.status_code == 200
    assert hub.received[0].body == body
    assert hub.received[0].headers["Content-Type"] == "text/csv"


def test_report_batch_serialises_dicts_as_ndjson(client: CtplHubClient, hub: FakeHub) -> None:
    events = ({**EVENT, "policy_no": f"P{i}"} for i in range(3))
    assert client.report_batch(events) == {"accepted": 3, "rejected": 0}
    sent = hub.received[0]
    assert sent.headers["Content-Type"] == "application/x-ndjson"
    lines = sent.body.decode().splitlines()
    assert [json.loads(line)["policy_no"] for line in lines] == ["P0", "P1", "P2"]


def test_report_batch_bytes(client: CtplHubClient, hub: FakeHub) -> None:
    body = b'{"a":1}\n{"a":2}\n'
    assert client.report_batch(body)["accepted"] == 2
    assert hub.received[0].body == body


def test_heartbeat_and_sync(client: CtplHubClient, hub: FakeHub) -> None:
    assert client.heartbeat("PICC") == {"ok": True, "echo": {}}
    assert client.heartbeat("PICC", at="2026-11-25T10:00:00+08:00")["echo"] == {
        "at": "2026-11-25T10:00:00+08:00"
    }
    assert client.sync("PICC") == {"insurer_code": "PICC"}
    assert [(r.method, r.target) for r in hub.received] == [
        ("POST", "/v1/insurers/PICC/heartbeat"),
        ("POST", "/v1/insurers/PICC/heartbeat"),
        ("GET", "/v1/insurers/PICC/sync"),
    ]
    assert hub.received[2].body == b""


def test_error_body_becomes_ctplhub_error(client: CtplHubClient) -> None:
    with pytest.raises(CtplHubError) as caught:
        client.report_event({**EVENT, "version": 1})
    error = caught.value
    assert (error.status, error.code, error.message, error.details) == (
        409,
        "version_conflict",
        "版本冲突",
        {"expected": 2},
    )
    assert "409 version_conflict" in str(error)


def test_non_json_error_body_still_gives_an_error(client: CtplHubClient) -> None:
    with pytest.raises(CtplHubError) as caught:
        client.sync("GATEWAY")
    error = caught.value
    assert (error.status, error.code) == (502, "http_error")
    assert "bad gateway" in error.message


def test_base_url_with_path_prefix(hub: FakeHub) -> None:
    with CtplHubClient(hub.url + "/hub/", KEY_ID, SECRET) as client:
        assert client.sync("PICC") == {"insurer_code": "PICC"}
    assert hub.received[0].target == "/hub/v1/insurers/PICC/sync"


def test_json_and_content_together_are_refused(client: CtplHubClient) -> None:
    with pytest.raises(ValueError):
        client.request("POST", "/v1/x", json={}, content=b"{}")
