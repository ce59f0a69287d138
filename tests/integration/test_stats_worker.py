"""``ctplhub worker`` keeps the regulators' statistics up to date (DESIGN §11): as a real
process on both engines, its first pass counts the events waiting, and SIGTERM stops it
cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ctplhub.bootstrap import Container
from ctplhub.store.tables import policy_events, stats_vehicles, stats_watermark
from stats_history import cpic, history

__all__ = ["cpic", "history"]  # fixtures, used by name


@pytest.mark.usefixtures("history")
def test_the_worker_counts_the_waiting_events_into_the_statistics(
    container: Container, database_url: str, home: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home)}
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "ctplhub.cli.worker", "--no-decide", "--no-jobs"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with container.engine.connect() as conn:
            last = conn.execute(select(func.max(policy_events.c.id))).scalar_one()
        deadline = time.monotonic() + 60
        while True:
            with container.engine.connect() as conn:
                mark = select(stats_watermark.c.last_event_id)
                if conn.execute(mark).scalar() == last:  # no row before the first pass
                    vehicles = conn.execute(select(func.count()).select_from(stats_vehicles))
                    break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not refresh the statistics"
            time.sleep(0.2)
        assert vehicles.scalar_one() == 7  # V1 to V5, V7, V8 of the history
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
