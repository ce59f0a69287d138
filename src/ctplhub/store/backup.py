"""``ctplhub backup FILE`` / ``ctplhub restore FILE`` (DESIGN §8; docs/backup.md).

A backup is one tar file: ``manifest.json`` and the database, either a ``pg_dump``
archive (custom format) or the two SQLite files copied by the online backup API. The
manifest records what the database held at the instant of the copy (schema revision,
rows per table, the ledger's latest signed tree head, the master key ids its data keys
are wrapped by) plus what the caller adds (the key fingerprints, ``cli/backup.py``), so
that a restore can prove it brought back the same data and that the keys it runs with
can read it. On PostgreSQL those facts are read in the very snapshot ``pg_dump`` copies
(``pg_export_snapshot``); on SQLite they are read from the copy itself.

Keys are never in a backup: the database's personal data is sealed under keys kept as
files so that a stolen dump alone reveals nothing (docs/DECISIONS.md, "Backup").
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from ctplhub.store import backup_postgres as pg
from ctplhub.store import backup_sqlite as lite
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import data_keys, ledger_tree_heads, metadata

FORMAT = "ctplhub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PG_ARCHIVE = "database.pgdump"

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore refused or failed; ``code`` is stable, as in the API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    restored: dict[str, Any]  # the restored database's facts, to compare with the manifest

    @property
    def same(self) -> bool:
        return all(self.restored[k] == self.manifest[k] for k in ("revision", "rows", "ledger"))


def engine_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def database_facts(conn: Connection) -> dict[str, Any]:
    """What the database holds, for the manifest and for a restore to compare."""
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    rows = {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in metadata.sorted_tables
    }
    head = conn.execute(
        select(ledger_tree_heads.c.tree_size, ledger_tree_heads.c.root_hash)
        .order_by(ledger_tree_heads.c.tree_size.desc())
        .limit(1)
    ).first()
    ledger = None if head is None else {"tree_size": head[0], "root_hash": bytes(head[1]).hex()}
    masters = sorted(conn.execute(select(data_keys.c.master_kid).distinct()).scalars())
    return {"revision": revision, "rows": rows, "ledger": ledger, "master_kids": masters}


def backup(
    url: str, target: Path, extra: dict[str, Any], progress: Progress, pg_bin: Path | None = None
) -> dict[str, Any]:
    """Write the backup of the database at ``url`` to ``target``; return its manifest."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ctplhub-backup-", dir=target.parent) as work:
        folder = Path(work)
        if engine_of(url) == "sqlite":
            try:
                facts = _copy_sqlite(url, folder, progress)
            except (OSError, ValueError, sqlite3.Error) as error:
                raise BackupError("backup_failed", f"cannot copy the database: {error}") from None
            members, tool = _sqlite_members(), None
        else:
            facts, tool = _dump_postgres(url, folder / PG_ARCHIVE, progress, pg_bin)
            members = [PG_ARCHIVE]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "engine": engine_of(url),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "pg_dump_major": tool,
            **facts,
            **extra,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        progress(f"writing {target}")
        partial = target.with_name(f".{target.name}.partial")
        # Compressed unless pg_dump's custom format already is; renamed when whole, so a
        # crash never leaves a truncated file under the backup's name.
        with tarfile.open(partial, "w" if tool else "w:gz") as archive:
            for name in [MANIFEST, *members]:
                archive.add(folder / name, arcname=name)
        partial.replace(target)
    return manifest


def _sqlite_members() -> list[str]:
    return [lite.MAIN_NAME, lite.ACCESS_LOG_NAME]


def _copy_sqlite(url: str, folder: Path, progress: Progress) -> dict[str, Any]:
    progress("copying the SQLite database and its access log (online backup API)")
    copy = folder / lite.MAIN_NAME
    lite.copy_database(lite.sqlite_path(url), copy)
    progress("reading the copy's facts (rows, ledger head)")
    return _facts_at(f"sqlite:///{copy}")


def _facts_at(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return database_facts(conn)
    finally:
        engine.dispose()


def _dump_postgres(
    url: str, target: Path, progress: Progress, pg_bin: Path | None
) -> tuple[dict[str, Any], int]:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            tool = pg.find_tool("pg_dump", pg.server_major(conn), pg_bin)
            conn.commit()  # the snapshot below must be the transaction's first statement
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            progress("reading the facts of the snapshot (rows, ledger head)")
            facts = database_facts(conn)
            progress(f"pg_dump {tool.major} of that snapshot ({tool.path})")
            pg.dump(tool, url, snapshot, target)
            conn.rollback()
    except pg.PgToolError as error:
        raise BackupError("backup_failed", str(error)) from None
    finally:
        engine.dispose()
    return facts, tool.major


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = tar.extractfile(MANIFEST)
            manifest: dict[str, Any] = json.loads(member.read()) if member else {}
    except (OSError, tarfile.TarError, KeyError, ValueError) as error:
        raise BackupError("backup_unreadable", f"{archive} is not a backup: {error}") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError("backup_unreadable", f"{archive} is not a CTPL Hub backup (version 1)")
    return manifest


def restore(
    archive: Path, url: str, *, force: bool, progress: Progress, pg_bin: Path | None = None
) -> RestoreResult:
    """Restore ``archive`` into the database at ``url``; refuse a database that holds
    anything unless ``force``. The servers using it must be stopped first."""
    manifest = read_manifest(archive)
    if manifest["engine"] != engine_of(url):
        raise BackupError(
            "backup_engine_mismatch",
            f"this is a {manifest['engine']} backup; it cannot restore into {engine_of(url)}",
        )
    with tempfile.TemporaryDirectory(prefix="ctplhub-restore-") as work:
        folder = Path(work)
        progress(f"unpacking {archive}")
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(folder, filter="data")
        if manifest["engine"] == "sqlite":
            _restore_sqlite(folder, url, force, progress)
        else:
            _restore_postgres(folder / PG_ARCHIVE, url, force, progress, pg_bin, manifest)
    progress("comparing the restored database with the manifest")
    return RestoreResult(manifest, _facts_at(url))


def _refuse_non_empty(where: str) -> BackupError:
    return BackupError(
        "restore_target_not_empty",
        f"{where} already holds data; restore only into an empty database, or pass --force "
        "to replace everything in it",
    )


def _restore_sqlite(folder: Path, url: str, force: bool, progress: Progress) -> None:
    target = lite.sqlite_path(url)
    if not force and not lite.is_empty(target):
        raise _refuse_non_empty(str(target))
    progress(f"copying into {target} (online backup API)")
    try:
        lite.copy_database(folder / lite.MAIN_NAME, target)
    except (OSError, sqlite3.Error) as error:
        raise BackupError("restore_failed", f"cannot write {target}: {error}") from None


def _restore_postgres(
    archive: Path,
    url: str,
    force: bool,
    progress: Progress,
    pg_bin: Path | None,
    manifest: dict[str, Any],
) -> None:
    engine: Engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            # pg_restore reads archives of its own version and older only.
            needed = max(pg.server_major(conn), int(manifest.get("pg_dump_major") or 0))
            tool = pg.find_tool("pg_restore", needed, pg_bin)
            if pg.user_relations(conn):
                if not force:
                    raise _refuse_non_empty(f"database {engine.url.database}")
                progress("--force: dropping everything in schema public")
                pg.empty_public_schema(conn)
        progress(f"pg_restore {tool.major} in one transaction ({tool.path})")
        pg.restore(tool, url, archive)
    except pg.PgToolError as error:
        raise BackupError("restore_failed", str(error)) from None
    finally:
        engine.dispose()
