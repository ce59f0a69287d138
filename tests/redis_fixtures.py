"""A ``redis-server`` of a test's own, which the test may stop and start again (the
shared Redis on 6379 is never stopped)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ctplhub.bootstrap import Container, build_container
from ctplhub.config import Settings
from ctplhub.security.nonces import MEMORY_SINCE
from ctplhub.security.request_signing import signed_headers
from helpers import Clock
from notify_fixtures import free_port

EVENTS_PATH = "/v1/policy-events"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """A ``redis-server`` of this test's own, and a function that starts it again."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    running: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        running.append(process)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=port).ping()
                return process
            except redis.ConnectionError:
                time.sleep(0.02)
        pytest.fail("the private redis-server did not start")

    yield port, start
    for process in running:
        process.terminate()
        process.wait(5)


def signed_event(
    key_id: str, secret: str, body: bytes, now_s: float | None = None
) -> dict[str, str]:
    """Headers of a signed ``POST /v1/policy-events`` of ``body`` (DESIGN §3.1)."""
    headers = signed_headers(key_id, secret, "POST", EVENTS_PATH, body, now_s=now_s)
    return {**headers, "Content-Type": "application/json"}


def container_on_redis(port: int, database_url: str, home: Path, clock: Clock) -> Container:
    """A container whose nonces and limits live in the private Redis on ``port``, its
    memory marked older than the test (``MEMORY_SINCE``), so the test's own requests are
    never taken for ones signed before it began."""
    redis.Redis(port=port).set(MEMORY_SINCE, "0")
    settings = Settings(
        database_url=database_url,
        home=home,
        redis_url=f"redis://127.0.0.1:{port}/0",
        insurer_cache_s=0,
    )
    return build_container(settings, clock=clock)
