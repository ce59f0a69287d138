"""What every ``ctplhub`` command module shares: the console, the ``--json`` flag, a wired
container closed when the command ends, and the one way to print a result or fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from ctplhub.api.presenters import error_body
from ctplhub.bootstrap import Container, build_container
from ctplhub.config import load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.security.keystore import KeysMissing
from ctplhub.store.schema import AccessLogFileMissing

console = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@contextmanager
def open_container() -> Iterator[Container]:
    """A wired container whose connections are closed when the command ends."""
    try:
        container = build_container(load_settings())
    except (KeysMissing, AccessLogFileMissing) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    try:
        yield container
    finally:
        container.close()


def fail(error: DomainError, as_json: bool) -> None:
    """Print the error in the API's one shape (``--json``) or for people; exit 1."""
    if as_json:
        print(json.dumps({"error": error_body(error)}, ensure_ascii=False))
    else:
        console.print(f"[red]error[/red] [bold]{error.code}[/bold]: {error.message}")
    raise typer.Exit(1)


def emit(payload: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False))
    else:
        console.print(text)
