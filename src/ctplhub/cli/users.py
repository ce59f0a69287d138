"""``ctplhub user add|list|disable|enable|token|password`` (DESIGN §8): named accounts,
their bearer tokens and staff page passwords.

Every change is a database commit, and every request reads the accounts from the
database: a disabled account or a replaced token is refused by every server process
from the moment the command returns.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ctplhub.cli.common import JsonFlag, emit, fail, open_container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, format_optional
from ctplhub.services.ports import UserRecord
from ctplhub.services.users import IssuedToken

NameArg = Annotated[str, typer.Argument(help="Account name, e.g. officer-0421.")]


def user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "user": user.name,
        "role": user.role,
        "disabled": user.disabled_at is not None,
        "disabled_at": format_optional(user.disabled_at),
        "token_expires_at": format_instant(user.token_expires_at),
        "password_set": user.has_password,
        "created_at": format_instant(user.created_at),
    }


def token_json(issued: IssuedToken) -> dict[str, Any]:
    return {
        "user": issued.user,
        "role": issued.role,
        "token": issued.token,
        "expires_at": format_instant(issued.expires_at),
    }


def register(user_app: typer.Typer) -> None:
    """Add the account commands to ``user_app``."""

    def token_text(issued: IssuedToken, what: str) -> str:
        return (
            f"user [bold]{issued.user}[/bold] ({issued.role}) {what}\n"
            f"token: {issued.token}\nexpires: {format_instant(issued.expires_at)}\n"
            "(not shown again)"
        )

    @user_app.command("add")
    def add(
        name: NameArg,
        role: Annotated[
            str, typer.Option(help="police | regulator | agent | admin | auditor | registrar")
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Create an account and print its bearer token (shown once)."""
        try:
            with open_container() as container:
                issued = container.users.add_account(name, role)
        except DomainError as error:
            fail(error, as_json)
            return
        emit(token_json(issued), as_json, token_text(issued, "created"))

    @user_app.command("list")
    def list_users(as_json: JsonFlag = False) -> None:
        """List accounts: role, disabled or not, token expiry, creation."""
        with open_container() as container:
            records = container.users.list()
        if as_json:
            print(json.dumps({"users": [user_json(u) for u in records]}, ensure_ascii=False))
            return
        table = Table("user", "role", "status", "token expires", "password", "created")
        for u in records:
            table.add_row(
                u.name,
                u.role,
                "disabled" if u.disabled_at else "active",
                format_instant(u.token_expires_at),
                "set" if u.has_password else "-",
                format_instant(u.created_at),
            )
        Console().print(table)

    @user_app.command("token")
    def token(name: NameArg, as_json: JsonFlag = False) -> None:
        """Issue a new bearer token; the old one stops working at once (shown once)."""
        try:
            with open_container() as container:
                issued = container.users.issue_token(name)
        except DomainError as error:
            fail(error, as_json)
            return
        emit(token_json(issued), as_json, token_text(issued, "has a new token"))

    @user_app.command("disable")
    def disable(name: NameArg, as_json: JsonFlag = False) -> None:
        """Disable an account: its token and page sessions end at once."""
        try:
            with open_container() as container:
                user = container.users.disable(name)
        except DomainError as error:
            fail(error, as_json)
            return
        emit(user_json(user), as_json, f"user {user.name} is disabled")

    @user_app.command("enable")
    def enable(name: NameArg, as_json: JsonFlag = False) -> None:
        """Enable an account again; issue it a token with `ctplhub user token NAME`."""
        try:
            with open_container() as container:
                user = container.users.enable(name)
        except DomainError as error:
            fail(error, as_json)
            return
        emit(
            user_json(user),
            as_json,
            f"user {user.name} is enabled; give it a token: ctplhub user token {user.name}",
        )

    @user_app.command("password")
    def password(
        name: NameArg,
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from stdin.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Set the password of the staff pages (asked twice; at least 12 characters)."""
        if password_stdin:
            secret = sys.stdin.readline().rstrip("\r\n")
        else:
            secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        try:
            with open_container() as container:
                container.users.set_password(name, secret)
        except DomainError as error:
            fail(error, as_json)
            return
        emit({"user": name, "password_set": True}, as_json, f"password of {name} set")
