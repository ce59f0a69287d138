"""``ctplhub keys …`` and ``ctplhub insurer rotate-secret`` (DESIGN §5.1, §5.3, §8).

``keys rotate`` may run while servers answer and ingest: it commits batch by batch, and
running it again after an interruption continues where it stopped (the work left is
always "rows not under the active keys"). ``keys rotate-master`` wraps the data keys
again under a new master key. Secrets are printed once, never logged.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ctplhub.bootstrap import KeyTools, initialise, utc_now
from ctplhub.cli.common import JsonFlag, console, emit, fail, open_container
from ctplhub.config import load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant
from ctplhub.security.keystore import KeysMissing, add_master_key, add_signing_key, load_keys
from ctplhub.store.schema import make_engine

keys_app = typer.Typer(
    help="Rotate the personal-data keys (online, resumable) and the answer-signing key."
)
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """``24h``, ``90m``, ``7d``, ``1d12h``, ``30s`` or ``0``."""
    match = _DURATION.fullmatch(text.strip())
    if text.strip() == "0":
        return timedelta(0)
    if not text.strip() or match is None:
        raise typer.BadParameter("use a duration such as 24h, 90m, 7d, 1d12h or 0")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@keys_app.command("rotate")
def rotate(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 1000,
    max_batches: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many batches (resume later).")
    ] = None,
    settle: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds to wait for writes sealed under the old key before retiring it."
        ),
    ] = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """New field and blind-index keys, then every row re-sealed under them in batches.

    Run it again after an interruption: it continues the unfinished rotation.
    """
    settings = load_settings()
    initialise(settings)  # an older install gets its master key and first data keys
    engine = make_engine(settings.database_url)
    try:
        tools = KeyTools(engine, settings.home, utc_now)
        report = tools.rotation.begin()
        with Progress(
            TextColumn("re-encrypting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task("rows", total=report.started_with)
            report = tools.rotation.run(
                report,
                batch_size=batch_size,
                max_batches=max_batches,
                settle_s=settle,
                progress=lambda n: bar.advance(task, n),
            )
    except DomainError as error:
        fail(error, as_json)
    finally:
        engine.dispose()
    state = "complete" if report.complete else f"stopped, {report.remaining} rows left"
    emit(
        report.as_json(),
        as_json,
        f"{'resumed' if report.resumed else 'new'} keys: field {report.field_kid}, blind index "
        f"{report.blind_kid}\n{report.resealed} rows and {report.secrets_resealed} insurer "
        f"secrets re-sealed in {report.batches} batches: {state}",
    )


@keys_app.command("rotate-master")
def rotate_master(as_json: JsonFlag = False) -> None:
    """A new master key in CTPLHUB_HOME/keys; every data key wrapped again under it.

    Older master keys stay in the file: copy it to every host that serves.
    """
    settings = load_settings()
    initialise(settings)
    kid = add_master_key(settings.home)
    engine = make_engine(settings.database_url)
    try:
        rewrapped = KeyTools(engine, settings.home, utc_now).rotation.rotate_master()
    finally:
        engine.dispose()
    emit(
        {"master_kid": kid, "rewrapped_kids": rewrapped},
        as_json,
        f"new master key {kid}; {len(rewrapped)} data keys wrapped again under it",
    )


@keys_app.command("rotate-signing")
def rotate_signing(as_json: JsonFlag = False) -> None:
    """A new answer-signing key (new kid) for answers, tree heads and certificates.

    The old keys stay in CTPLHUB_HOME/keys and in the JWKS, so what they signed still
    verifies. Copy the key file to every host that serves, then restart the servers: a
    running server signs with the key it loaded at start.
    """
    settings = load_settings()
    try:
        kid, previous = add_signing_key(settings.home)
        kids = sorted(load_keys(settings.home).signing_keys)
    except KeysMissing as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    emit(
        {"kid": kid, "previous_kid": previous, "kids": kids, "restart_required": True},
        as_json,
        f"new signing key {kid} is active (was {previous}); {len(kids)} keys published in "
        "the JWKS\ncopy the key file to every host that serves, then restart the servers",
    )


@keys_app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """The data keys and how many rows are not yet under the active ones."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        keys, stale = KeyTools(engine, settings.home, utc_now).rotation.status()
    finally:
        engine.dispose()
    rows = [
        {
            "kid": k.kid,
            "purpose": k.purpose,
            "seq": k.seq,
            "state": k.state,
            "master_kid": k.master_kid,
            "created_at": format_instant(k.created_at),
        }
        for k in keys
    ]
    lines = [f"{r['kid']}  {r['purpose']:<5} {r['state']:<8} {r['created_at']}" for r in rows]
    emit(
        {"data_keys": rows, "rows_not_under_active_keys": stale},
        as_json,
        "\n".join([*lines, f"rows not under the active keys: {stale}"]),
    )


def insurer_rotate_secret(
    code: Annotated[str, typer.Argument(help="Insurer code, e.g. PICC.")],
    overlap: Annotated[
        str, typer.Option(help="How long the old secret keeps working, e.g. 24h, 7d, 0.")
    ] = "24h",
    as_json: JsonFlag = False,
) -> None:
    """A new API key id and secret (shown once); the old one works for the overlap."""
    window = parse_duration(overlap)
    try:
        with open_container() as container:
            new = container.insurers.rotate_secret(code, overlap=window)
    except DomainError as error:
        fail(error, as_json)
        return
    emit(
        {
            "insurer_code": new.insurer_code,
            "key_id": new.key_id,
            "secret": new.secret,
            "old_key_ids": list(new.old_key_ids),
            "old_keys_valid_until": format_instant(new.old_keys_until),
        },
        as_json,
        f"insurer [bold]{new.insurer_code}[/bold]: new key id {new.key_id}\n"
        f"secret: {new.secret}\n(the secret is not shown again)\n"
        f"old keys {', '.join(new.old_key_ids) or '-'} work until "
        f"{format_instant(new.old_keys_until)}",
    )
