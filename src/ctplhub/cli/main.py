"""The ``ctplhub`` command (DESIGN §8), configured by ``CTPLHUB_*`` variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ctplhub.bootstrap import build_container, initialise
from ctplhub.cli.anpr import anpr_app
from ctplhub.cli.backup import backup_command, restore_command
from ctplhub.cli.cert import cert_app
from ctplhub.cli.common import JsonFlag, console, emit, fail, open_container
from ctplhub.cli.disputes import disputes_app
from ctplhub.cli.flags import flags_app
from ctplhub.cli.forecast import forecast_app
from ctplhub.cli.importer import import_file, quiet_collector
from ctplhub.cli.keys import insurer_rotate_secret, keys_app
from ctplhub.cli.ledger import ledger_app
from ctplhub.cli.match import match_command
from ctplhub.cli.reconcile import compliance_command, reconcile_command
from ctplhub.cli.remind import remind_app
from ctplhub.cli.stats import stats_app
from ctplhub.cli.users import register as register_user_commands
from ctplhub.cli.verify_jobs import verify_jobs_app
from ctplhub.cli.worker import worker as worker_command
from ctplhub.config import load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_optional
from ctplhub.logs import configure_logging, flush_logs
from ctplhub.security.keystore import KeysMissing
from ctplhub.store.schema import AccessLogFileMissing, check_access_log_file, make_engine

ACTOR = "cli"

app = typer.Typer(
    help="CTPL Hub: the national 交强险 information-sharing platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
insurer_app = typer.Typer(help="Register insurers and change their certification.")
user_app = typer.Typer(help="Named accounts (police, regulator, agent, admin, auditor, registrar).")
app.add_typer(insurer_app, name="insurer")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")
app.add_typer(ledger_app, name="ledger")
app.add_typer(cert_app, name="cert")
app.add_typer(remind_app, name="remind")
app.add_typer(disputes_app, name="disputes")  # DESIGN §10 (cli/disputes.py)
app.add_typer(anpr_app, name="anpr")  # DESIGN §12 (cli/anpr.py)
app.add_typer(flags_app, name="flags")  # data-quality flags (cli/flags.py)
app.add_typer(forecast_app, name="forecast")  # issue 12 item 6 (cli/forecast.py)
app.add_typer(stats_app, name="stats")  # DESIGN §11 (cli/stats.py)
app.add_typer(verify_jobs_app, name="verify-jobs")  # DESIGN §11 (cli/verify_jobs.py)
app.command("worker")(worker_command)
insurer_app.command("rotate-secret")(insurer_rotate_secret)
app.command("reconcile")(reconcile_command)  # DESIGN §10 (cli/reconcile.py)
app.command("compliance")(compliance_command)  # DESIGN §10 (cli/reconcile.py)
app.command("match")(match_command)  # DESIGN §11 (cli/match.py)
app.command("backup")(backup_command)  # DESIGN §8 (cli/backup.py, docs/backup.md)
app.command("restore")(restore_command)


@app.command()
def init() -> None:
    """Create or migrate the schema; create keys under CTPLHUB_HOME if missing."""
    settings = load_settings()
    created = initialise(settings)
    for name in created:
        console.print(f"created key file [bold]{name}[/bold] in {settings.home}/keys")
    console.print(f"schema is up to date on {_safe_url(settings.database_url)}")


def _safe_url(url: str) -> str:
    """The database URL without its password, fit for a log line."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    keep_alive: Annotated[
        int,
        typer.Option(
            help="Seconds an idle kept-alive connection stays open. Behind a proxy it must "
            "exceed the proxy's own idle timeout for upstream connections (nginx's "
            "keepalive_timeout, 60 s in deploy/), or the proxy may send a request on a "
            "connection this server is closing (a 502 for the client)."
        ),
    ] = 75,
) -> None:
    """Run the API and the web pages; logs are JSON lines on standard error."""
    settings = load_settings()
    configure_logging(settings.log_level)
    _refuse_a_half_restored_database(settings.database_url)
    if settings.serve_runs_jobs:  # in a process of its own, off the event loop of queries
        _JOB_RUNNERS.append(_start_job_runner())
        os.environ["CTPLHUB_SERVE_RUNS_JOBS"] = "false"  # the app's own loop leaves them
    _flush_logs_before_dying_of(signal.SIGTERM, signal.SIGINT)
    try:
        _serve(host, port, workers, keep_alive)
    finally:
        _stop_job_runners()


def _serve(host: str, port: int, workers: int, keep_alive: int = 75) -> None:
    import uvicorn

    uvicorn.run(
        "ctplhub.bootstrap:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_keep_alive=keep_alive,
        access_log=False,  # our own request line replaces it (route template, request id)
        log_config=None,  # the logging configured here, not uvicorn's own
    )


def _refuse_a_half_restored_database(url: str) -> None:
    """Before uvicorn starts: an SQLite database restored without its access log file
    would serve and record nothing (``store.schema.check_access_log_file``)."""
    engine = make_engine(url)
    try:
        check_access_log_file(engine)
    finally:
        engine.dispose()


_JOB_RUNNERS: list[subprocess.Popen[bytes]] = []


def _start_job_runner() -> subprocess.Popen[bytes]:
    """``ctplhub verify-jobs run`` beside the server (DESIGN §11: the server runs queued
    jobs by itself): a chunk's work then never holds the loop that answers queries."""
    command = "from ctplhub.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", command, "verify-jobs", "run", "--parent", str(os.getpid())]
    )


def _stop_job_runners() -> None:
    while _JOB_RUNNERS:
        runner = _JOB_RUNNERS.pop()
        if runner.poll() is None:
            runner.terminate()
            try:
                runner.wait(35)  # its chunk in progress finishes first (at most 30 s)
            except subprocess.TimeoutExpired:
                runner.kill()


def _flush_logs_before_dying_of(*signals: signal.Signals) -> None:
    """uvicorn shuts down gracefully on SIGTERM or SIGINT, then raises the signal again
    under the handler it found, so that the process ends the way it was told to; by then
    ``atexit`` would never run, and the last buffered log lines ("shutdown complete")
    would be lost. The handler it finds is this one: flush, then die of the signal."""

    def flush_and_reraise(number: int, _: object) -> None:
        _stop_job_runners()
        flush_logs()
        signal.signal(number, previous[number])
        signal.raise_signal(number)

    previous = {int(s): signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, flush_and_reraise)


@insurer_app.command("add")
def insurer_add(
    code: Annotated[str, typer.Argument(help="Insurer code, e.g. PICC.")],
    name: Annotated[str, typer.Option(help="Registered name.")],
    claims_phone: Annotated[
        str | None,
        typer.Option(help="Claims hotline given to police after an accident, e.g. 95518."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a certified insurer and print its API key id and secret (shown once)."""
    try:
        with open_container() as container:
            new = container.insurers.add(code, name, actor=ACTOR, claims_phone=claims_phone)
    except DomainError as error:
        fail(error, as_json)
        return
    payload = {"insurer_code": new.insurer_code, "key_id": new.key_id, "secret": new.secret}
    emit(
        payload,
        as_json,
        f"insurer [bold]{new.insurer_code}[/bold] registered\n"
        f"key id: {new.key_id}\nsecret: {new.secret}\n(the secret is not shown again)",
    )


def _status_command(status: str, verb: str) -> None:
    @insurer_app.command(verb, help=f"Mark an insurer {status}, with a reason.")
    def command(
        code: Annotated[str, typer.Argument(help="Insurer code.")],
        reason: Annotated[str, typer.Option(help="Why (kept in the certification history).")],
        as_json: JsonFlag = False,
    ) -> None:
        try:
            with open_container() as container:
                container.insurers.set_status(code, status, reason=reason, actor=ACTOR)
        except DomainError as error:
            fail(error, as_json)
            return
        emit(
            {"insurer_code": code.upper(), "status": status, "reason": reason},
            as_json,
            f"insurer {code.upper()} is now {status}",
        )


for _status, _verb in (("suspended", "suspend"), ("revoked", "revoke"), ("certified", "certify")):
    _status_command(_status, _verb)


@insurer_app.command("list")
def insurer_list(as_json: JsonFlag = False) -> None:
    """List insurers with their certification and last sync."""
    with open_container() as container:
        records = container.insurers.list()
    if as_json:
        rows = [
            {
                "insurer_code": r.code,
                "name": r.name,
                "status": r.status,
                "last_sync_at": format_optional(r.last_sync_at),
            }
            for r in records
        ]
        print(json.dumps({"insurers": rows}, ensure_ascii=False))
        return
    table = Table("code", "name", "status", "last sync (Beijing time)")
    for r in records:
        table.add_row(r.code, r.name, r.status, format_optional(r.last_sync_at) or "-")
    Console().print(table)


register_user_commands(user_app)  # add, list, token, disable, ...


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="NDJSON (.ndjson/.jsonl) or CSV (.csv) file.")],
    insurer: Annotated[str, typer.Option(help="The insurer whose events these are.")],
    errors: Annotated[
        Path | None, typer.Option(help="Also write every rejected line as NDJSON here.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (default: 2 for files of 50,000+ lines, else 1)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load a file of events with a progress bar and a per-line error report."""
    if not file.is_file():
        console.print(f"[red]no such file: {file}[/red]")
        raise typer.Exit(2)
    try:
        with open_container() as container:
            quiet_collector()  # this process does nothing but import
            summary = import_file(
                container,
                file,
                insurer,
                errors_to=errors,
                progress=not as_json,
                console=console,
                workers=workers,
            )
    except DomainError as error:
        fail(error, as_json)
        return
    if as_json:
        print(json.dumps(summary.as_json(), ensure_ascii=False))
    raise typer.Exit(1 if summary.rejected else 0)


@app.command()
def demo(
    vehicles: Annotated[int, typer.Option(help="Size of the synthetic fleet.")] = 20_000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve once loaded.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Initialise, load a realistic synthetic fleet, print sample plates, then serve."""
    from ctplhub.cli.demo import (
        demo_reminders,
        load_demo,
        print_reminders,
        print_samples,
        start_anpr_consumer,
    )

    settings = load_settings()
    initialise(settings)
    container = build_container(settings)
    report = load_demo(container, vehicles, console=console, progress=not as_json)
    # A mail catcher on 127.0.0.1:1025 (var/mail/*.eml) and the first reminders in it.
    report["reminders"] = demo_reminders(container, report, console=console)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_samples(report, Console())
        print_reminders(report["reminders"], Console())
    container.close()
    if serve_after:
        # Roadside cameras' consumer, when a broker answers (DESIGN §12; docs/anpr.md).
        start_anpr_consumer(container, console)
        # The demo serves plain http, where a browser would drop a Secure cookie: only
        # here are the staff pages' cookies sent without it (docs/DECISIONS.md).
        os.environ["CTPLHUB_COOKIE_SECURE"] = "false"
        serve(host=host, port=port, workers=1)


def main() -> None:
    try:
        app()
    except (KeysMissing, AccessLogFileMissing) as error:
        console.print(f"[red]{error}[/red]")
        sys.exit(2)
