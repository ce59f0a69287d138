"""Two real ``ctplhub serve`` processes, one database and one Redis, spend one budget
(DESIGN §4, §5.3): guesses split between them are refused as if sent to one.

The processes run with a key directory made for this test, so their keyed names in
Redis are this test's own even though every test shares the prefix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctplhub.security.keystore import ensure_keys

CTPLHUB = Path(sys.executable).with_name("ctplhub")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def servers(database_url: str, tmp_path: Path, redis_url: str) -> Iterator[list[str]]:
    home = tmp_path / "home"
    ensure_keys(home)
    env = {
        **os.environ,
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": redis_url,
        "CTPLHUB_RATE_LIMITS": "",
        "CTPLHUB_LOG_LEVEL": "WARNING",
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [str(CTPLHUB), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_until_up(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
            assert process.stderr is not None
            process.stderr.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"the server stopped: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer within 30 s")


def test_two_servers_share_one_limit_through_redis(servers: list[str]) -> None:
    a, b = servers
    with httpx.Client(timeout=10) as http:

        def guess(base: str, tail: str) -> httpx.Response:
            body = {"plate": "苏E12345", "vin_last6": tail}
            return http.post(f"{base}/v1/coverage/query", json=body)

        # Five wrong tails to each: neither server has seen ten, together they have.
        statuses = [guess(a if n % 2 else b, f"{n:06d}").status_code for n in range(10)]
        assert statuses == [404] * 10
        for base in (a, b):
            refused = guess(base, "999999")
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 3500 <= int(refused.headers["retry-after"]) <= 3600
        # The short answer of another plate is a budget of its own.
        assert http.post(f"{a}/v1/coverage/query", json={"plate": "苏E54321"}).status_code == 200


def test_behind_a_proxy_each_forwarded_client_has_its_own_budget(servers: list[str]) -> None:
    """We call from 127.0.0.1, which uvicorn trusts as a proxy by default: the address in
    X-Forwarded-For is the client (docs/DECISIONS.md), on both servers alike."""
    a, b = servers
    with httpx.Client(timeout=10) as http:

        def guess(base: str, plate: str, client: str) -> int:
            body = {"plate": plate, "vin_last6": "000000"}
            headers = {"X-Forwarded-For": client}
            return http.post(f"{base}/v1/coverage/query", json=body, headers=headers).status_code

        spent = [guess(a if n % 2 else b, f"京A{n:05d}", "203.0.113.7") for n in range(30)]
        assert spent == [404] * 30
        assert guess(a, "京B00001", "203.0.113.7") == 429
        assert guess(b, "京B00001", "203.0.113.8") == 404  # another client, another budget
