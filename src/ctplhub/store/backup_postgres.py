"""Back up and restore a PostgreSQL database with ``pg_dump`` / ``pg_restore`` (custom
format: compressed, restorable table by table, in one transaction).

``pg_dump`` must be at least as new as the server it reads, ``pg_restore`` at least as
new as the ``pg_dump`` that wrote the archive; a Debian host may have several versions
side by side (``/usr/lib/postgresql/N/bin``), and the one on ``PATH`` is whichever the
``postgresql-client-common`` wrapper picks. So the tools are chosen by version, never
by name alone, and an old one is refused with the fix rather than left to fail halfway.

The connection is handed over in ``PG*`` environment variables, never on the command
line, where any user of the host could read a password in the process list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class PgToolError(RuntimeError):
    """A PostgreSQL client tool is missing, too old, or failed; the message says which."""


@dataclass(frozen=True)
class PgTool:
    path: Path
    major: int


def server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10_000


def find_tool(name: str, at_least: int, bindir: Path | None = None) -> PgTool:
    """The ``name`` tool whose major version is ``at_least`` or newer: ``bindir`` when
    given, else ``/usr/lib/postgresql/<at_least>/bin``, then newer versions there, then
    ``PATH``."""
    candidates: list[Path] = []
    if bindir is not None:
        candidates.append(bindir / name)
    else:
        versions = sorted(
            (int(p.name) for p in _DEBIAN_ROOT.glob("*") if p.name.isdigit()), reverse=True
        )
        ordered = [at_least] + [v for v in versions if v != at_least]
        candidates += [_DEBIAN_ROOT / str(v) / "bin" / name for v in ordered]
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    seen: list[str] = []
    for path in candidates:
        if not path.is_file():
            continue
        major = _major_of(path)
        if major >= at_least:
            return PgTool(path, major)
        seen.append(f"{path} ({major})")
    found = ", ".join(seen) or "none"
    raise PgToolError(
        f"{name} {at_least} or newer is needed (the server or archive is version "
        f"{at_least}); found: {found}. Install postgresql-client-{at_least} or pass --pg-bin"
    )


def _major_of(path: Path) -> int:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    match = _VERSION.search(out.stdout)
    if match is None:
        raise PgToolError(f"cannot read the version of {path}: {out.stdout.strip()!r}")
    return int(match.group(1))


def libpq_environment(url: str) -> dict[str, str]:
    """The ``PG*`` variables that make libpq's tools connect where ``url`` points."""
    parsed = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for variable, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value is not None:
            env[variable] = str(value)
    return env


def dump(tool: PgTool, url: str, snapshot: str, target: Path) -> None:
    """``pg_dump`` of the database at ``url`` as of the exported ``snapshot`` (which the
    caller's open transaction keeps alive) into ``target``."""
    _run(
        [
            str(tool.path),
            "--format=custom",
            "--no-password",
            f"--snapshot={snapshot}",
            f"--file={target}",
        ],
        url,
    )


def restore(tool: PgTool, url: str, archive: Path) -> None:
    """``pg_restore`` into the database at ``url``, all of it or nothing (one
    transaction, stopping at the first error)."""
    _run(
        [
            str(tool.path),
            "--no-password",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={make_url(url).database}",
            str(archive),
        ],
        url,
    )


def _run(argv: list[str], url: str) -> None:
    done = subprocess.run(argv, env=libpq_environment(url), capture_output=True, text=True)
    if done.returncode != 0:
        name = Path(argv[0]).name
        raise PgToolError(f"{name} failed (exit {done.returncode}): {done.stderr.strip()}")


def user_relations(conn: Connection) -> int:
    """Tables, views and sequences outside PostgreSQL's own schemas."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg\\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
            )
        ).scalar_one()
    )


def empty_public_schema(conn: Connection) -> None:
    """Drop everything in ``public`` (``restore --force``) and give the schema back the
    owner and rights a new PostgreSQL 15 database has."""
    conn.execute(text("DROP SCHEMA public CASCADE"))
    conn.execute(text("CREATE SCHEMA public"))
    conn.execute(text("ALTER SCHEMA public OWNER TO pg_database_owner"))
    conn.execute(text("GRANT USAGE ON SCHEMA public TO PUBLIC"))
