"""Back up and restore an SQLite database through SQLite's online backup API.

One database is two files, the main one and its access log's (``store.schema``); each is
copied with ``sqlite3.Connection.backup`` in one step (``pages=-1``): the copy is a read
transaction of the source, so it is the database as of one instant while the server goes
on writing (WAL mode lets writers continue beside a reader). A copy in several steps
would restart at every write of another connection and might never finish under load.

The two files are copied one after the other, so they are two instants, not one: the
access log references nothing of the main file (no key crosses them), so a log entry
written between the two copies is only a read recorded slightly later.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from ctplhub.store.schema import access_log_file

MAIN_NAME = "ctplhub.db"  # in an archive: named so that access_log_file() finds the other
ACCESS_LOG_NAME = access_log_file(MAIN_NAME).name


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def copy_database(source: Path, target: Path) -> None:
    """Copy ``source`` and its access log's file to ``target`` and its access log's file,
    each file one consistent instant; ``target``'s content, if any, is replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((source, target), (access_log_file(source), access_log_file(target))):
        if not src.exists():  # SQLite would create an empty one and copy nothing
            raise FileNotFoundError(f"{src} does not exist")
        with (
            closing(sqlite3.connect(src, timeout=30)) as reader,
            closing(sqlite3.connect(dst, timeout=30)) as writer,
        ):
            reader.backup(writer, pages=-1)
            # The copy keeps WAL mode from the source's header; fold it into the file so
            # that one file is the whole database (an archive takes no ``-wal``).
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def is_empty(path: Path) -> bool:
    """No file, or a file without a single table: nothing a restore would destroy."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        (tables,) = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()
    return int(tables) == 0
