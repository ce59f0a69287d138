"""One log, no fork, no gap, however many writers (issue 8): threads with engines of their
own, and separate ``ctplhub import`` processes, append at once; afterwards the leaves are
0..n-1, every event has exactly one, and the stored root is the root of the entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_ledger_write import assert_log_is_whole

from ctplhub.bootstrap import Container, build_container
from ctplhub.config import Settings
from helpers import event

THREADS = 4
PER_THREAD = 240
WORKERS = ("--workers", "2", "--json")


def test_writers_on_threads_with_engines_of_their_own_never_fork_the_log(
    settings: Settings, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    container.insurers.add("PICC", "中国人保", actor="test")
    monkeypatch.setattr("ctplhub.services.report_events.CHUNK_SIZE", 20)  # many transactions
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def write(worker: int) -> None:
        own = build_container(settings)  # its own engine and connections
        try:
            start.wait()
            lines = [
                (i, event(policy_no=f"T{worker}-{i}", version=1 + i % 3)) for i in range(PER_THREAD)
            ]
            for result in own.report_events.report_many(lines, insurer_code="PICC"):
                assert result.status == "accepted", result.error
        except BaseException as error:
            failures.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert_log_is_whole(container)
    report = container.ledger_audit.run()
    assert report.clean and report.leaves == THREADS * PER_THREAD


def _write(path: Path, code: str, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            line = event(insurer_code=code, policy_no=f"{code}{i:06d}")
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def test_two_import_processes_at_once_keep_one_log(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    files = {}
    for code in ("PICC", "CPIC"):
        container.insurers.add(code, code, actor="test")
        files[code] = tmp_path / f"{code}.ndjson"
        _write(files[code], code, 4_500)  # two workers each, several chunks each
    env = {
        **os.environ,
        "CTPLHUB_DATABASE_URL": settings.database_url,
        "CTPLHUB_HOME": str(settings.home),
        "CTPLHUB_REDIS_URL": "",
    }
    command = "import sys; from ctplhub.cli.main import main; sys.exit(main())"
    running = [
        subprocess.Popen(
            [sys.executable, "-c", command, "import", str(path), "--insurer", code, *WORKERS],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code, path in files.items()
    ]
    for process in running:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1])["accepted"] == 4_500
    assert_log_is_whole(container)
    report = container.ledger_audit.run()
    assert report.clean and report.leaves == 9_000
