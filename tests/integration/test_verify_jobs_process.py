"""``ctplhub serve`` answers verify jobs in a process of its own (``ctplhub verify-jobs
run``, DESIGN §11): a job's chunks never hold the event loop that answers queries. The
runner ends with the server, on SIGTERM or when the server is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctplhub.bootstrap import Container
from helpers import bearer_headers
from notify_fixtures import free_port

CTPLHUB = Path(sys.executable).with_name("ctplhub")


def runners_of(server_pid: int) -> list[int]:
    """Processes started as the job runner of ``server_pid`` (by their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"verify-jobs" in words and str(server_pid).encode() in words:
            found.append(int(entry.name))
    return found


def wait_until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def server(database_url: str, home: Path, container: Container) -> Iterator[tuple[int, str]]:
    port = free_port()
    env = {
        **os.environ,
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
        "CTPLHUB_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [str(CTPLHUB), "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up)
        yield process.pid, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(20)


def test_serve_answers_a_job_in_a_runner_process_that_ends_with_it(
    server: tuple[int, str], container: Container
) -> None:
    pid, url = server
    wait_until(lambda: len(runners_of(pid)) == 1)
    police = container.users.add("officer-jobs", "police")
    headers = {
        **bearer_headers(police),
        "Content-Type": "text/csv",
        "X-CTPL-Purpose": "inspection",
    }
    posted = httpx.post(
        f"{url}/v1/verify-jobs", content=b"plate,vin,at\n\xe8\x8b\x8fE12345,,\n", headers=headers
    )
    assert posted.status_code == 202, posted.text
    job = f"{url}/v1/verify-jobs/{posted.json()['job_id']}"
    wait_until(lambda: httpx.get(job, headers=bearer_headers(police)).json()["status"] == "done")

    (runner,) = runners_of(pid)
    os.kill(pid, signal.SIGTERM)  # the server stops its runner before it ends
    wait_until(lambda: _ended(runner))


def test_a_runner_whose_server_was_killed_stops(server: tuple[int, str]) -> None:
    pid, _ = server
    wait_until(lambda: len(runners_of(pid)) == 1)
    os.kill(pid, signal.SIGKILL)  # no handler runs: the runner sees its parent gone
    wait_until(lambda: all(_ended(runner) for runner in runners_of(pid)), timeout=20)


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever reaps it (an exiting process's command line
    reads empty before that, so ``runners_of`` alone cannot tell)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status or "\nState:\tX" in status
