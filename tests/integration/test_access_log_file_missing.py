"""An SQLite database restored without its access log file is refused, not served.

SQLite creates an empty file for an ``ATTACH`` of a missing one; without the check the
server would start and drop every access-log entry it recorded (docs/DECISIONS.md,
"Access log"). SQLite only: PostgreSQL keeps the log in the database itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from ctplhub.bootstrap import build_container
from ctplhub.config import load_settings
from ctplhub.store.schema import (
    AccessLogFileMissing,
    access_log_file,
    check_access_log_file,
    make_engine,
    migrate,
)


@pytest.fixture
def restored_without_log(tmp_path: Path, sqlite_template: Path) -> Path:
    """A migrated database file copied alone, as a careless restore would."""
    path = tmp_path / "restored.db"
    shutil.copyfile(sqlite_template, path)
    assert not access_log_file(path).exists()
    return path


def test_a_database_with_its_log_file_passes(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "whole.db"
    shutil.copyfile(sqlite_template, path)
    shutil.copyfile(access_log_file(sqlite_template), access_log_file(path))
    engine = make_engine(f"sqlite:///{path}")
    try:
        check_access_log_file(engine)
    finally:
        engine.dispose()


def test_a_new_database_is_not_refused_before_it_is_migrated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        check_access_log_file(engine)  # nothing migrated yet: nothing missing
        migrate(engine)  # and the migration creates the log's file
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit.access_log")).scalar() == 0
    finally:
        engine.dispose()


def test_the_check_names_the_missing_file(restored_without_log: Path) -> None:
    engine = make_engine(f"sqlite:///{restored_without_log}")
    try:
        with pytest.raises(AccessLogFileMissing, match=r"restored\.access-log\.db"):
            check_access_log_file(engine)
    finally:
        engine.dispose()


def test_the_server_is_not_built_on_it(
    restored_without_log: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTPLHUB_DATABASE_URL", f"sqlite:///{restored_without_log}")
    monkeypatch.setenv("CTPLHUB_HOME", str(home))
    with pytest.raises(AccessLogFileMissing):
        build_container(load_settings())


def test_serve_refuses_it_with_a_message_and_no_trace(
    restored_without_log: Path, home: Path
) -> None:
    env = {
        **os.environ,
        "CTPLHUB_DATABASE_URL": f"sqlite:///{restored_without_log}",
        "CTPLHUB_HOME": str(home),
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ctplhub")), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    said = done.stderr.replace("\n", "")  # the console wraps long lines
    assert "access log" in said and "restored.access-log.db" in said
    assert "Traceback" not in done.stderr
