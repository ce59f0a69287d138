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

from notify_fixtures import free_port


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
