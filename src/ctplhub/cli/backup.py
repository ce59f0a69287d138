"""``ctplhub backup FILE`` / ``ctplhub restore FILE`` (DESIGN §8; docs/backup.md).

The work is ``store.backup``'s; this shell adds the key check. A backup names the keys
its data needs by fingerprint, never carrying them; a restore refuses to run with a key
directory that lacks one of them (``--ignore-keys`` to restore anyway), because the
personal data it brought back could then never be read, nor the ledger audited (the
audit rebuilds each leaf from the decrypted event). Exit codes: 0 done and verified,
1 refused or failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ctplhub.cli.common import JsonFlag, console
from ctplhub.config import load_settings
from ctplhub.security.key_fingerprints import key_fingerprints, missing_or_different
from ctplhub.security.keystore import KeysMissing, load_keys
from ctplhub.store.backup import BackupError, backup, read_manifest, restore

PgBin = Annotated[
    Path | None,
    typer.Option(help="Directory of pg_dump/pg_restore (default: the newest fitting one)."),
]


def _progress(as_json: bool) -> Any:
    def say(step: str) -> None:
        if not as_json:
            console.print(f"[dim]…[/dim] {step}")

    return say


def _refuse(error: BackupError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": {"code": error.code, "message": error.message}}))
    else:
        console.print(f"[red]error[/red] [bold]{error.code}[/bold]: {error.message}")
    raise typer.Exit(1)


def backup_command(
    file: Annotated[Path, typer.Argument(help="The backup file to write (a tar archive).")],
    pg_bin: PgBin = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a consistent backup of the database (pg_dump, or SQLite's online backup API)
    while the servers keep running. The key directory is not in it: back it up apart."""
    settings = load_settings()
    fingerprints: dict[str, str] | None = None
    try:
        fingerprints = key_fingerprints(load_keys(settings.home))
    except KeysMissing as error:  # a backup host may hold no keys: the restore checks less
        if not as_json:
            console.print(f"[yellow]no key fingerprints in this backup[/yellow]: {error}")
    file = file.resolve()
    try:
        manifest = backup(
            settings.database_url,
            file,
            {"key_fingerprints": fingerprints},
            _progress(as_json),
            pg_bin,
        )
    except BackupError as error:
        _refuse(error, as_json)
        return
    summary = _summary(manifest) | {"file": str(file), "bytes": file.stat().st_size}
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    console.print(
        f"[green]backup written[/green] {file} ({summary['bytes']:,} bytes): "
        f"{summary['events']:,} events, {_ledger_text(summary['ledger'])}"
    )


def restore_command(
    file: Annotated[Path, typer.Argument(help="A file written by `ctplhub backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data.")
    ] = False,
    ignore_keys: Annotated[
        bool,
        typer.Option("--ignore-keys", help="Restore even if CTPLHUB_HOME lacks the backup's keys."),
    ] = False,
    pg_bin: PgBin = None,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into the configured database (stop the servers first), then check
    that it holds what the backup recorded: rows per table and the ledger's tree head."""
    settings = load_settings()
    try:
        if not ignore_keys:
            _check_keys(read_manifest(file), settings.home)
        result = restore(
            file, settings.database_url, force=force, progress=_progress(as_json), pg_bin=pg_bin
        )
    except BackupError as error:
        _refuse(error, as_json)
        return
    summary = _summary(result.restored) | {
        "engine": result.manifest["engine"],
        "file": str(file),
        "verified": result.same,
    }
    if not result.same:
        summary["expected"] = _summary(result.manifest)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    elif result.same:
        console.print(
            f"[green]restored and verified[/green]: {summary['events']:,} events, "
            f"{_ledger_text(summary['ledger'])}, schema {summary['revision']} (run `ctplhub "
            "init` to migrate it if this version of CTPL Hub is newer)"
        )
    else:
        console.print("[red]the restored database differs from the backup's manifest[/red]")
    raise typer.Exit(0 if result.same else 1)


def _check_keys(manifest: dict[str, Any], home: Path) -> None:
    try:
        present = key_fingerprints(load_keys(home))
    except KeysMissing as error:
        raise BackupError(
            "backup_keys_missing",
            f"{error}; restore the key directory of this backup first (docs/backup.md)",
        ) from None
    needed = manifest.get("key_fingerprints")
    if needed is None:  # taken without keys: at least the master keys must be there
        needed = {f"master/{kid}": "" for kid in manifest["master_kids"]}
        present = {name: "" for name in present}
    absent = missing_or_different(needed, present)
    if absent:
        raise BackupError(
            "backup_keys_missing",
            f"{home}/keys lacks keys this backup's data needs ({', '.join(absent)}); restore "
            "the key directory saved with it first, or pass --ignore-keys",
        )


def _summary(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "engine": facts.get("engine"),
        "revision": facts["revision"],
        "events": facts["rows"]["policy_events"],
        "rows": facts["rows"],
        "ledger": facts["ledger"],
    }


def _ledger_text(ledger: dict[str, Any] | None) -> str:
    if ledger is None:
        return "an empty ledger"
    return f"a ledger of {ledger['tree_size']:,} leaves, root {ledger['root_hash'][:16]}…"
