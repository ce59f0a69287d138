"""``ctplhub cert verify TOKEN``: check an e-certificate offline (DESIGN §6.1, §8).

Against the public halves of the keys under CTPLHUB_HOME (every kid, retired ones
included), or against a JWKS file (``--jwks``, e.g. a saved copy of
``/.well-known/ctplhub-keys.json``) on a machine that holds no keys. Offline means the
signature only: whether the policy still covers the vehicle is the registry's to say
(``POST /v1/certificates/verify``). Exit 0 when valid, 1 when not (or not a token).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ctplhub.api.presenters import certificate
from ctplhub.cli.common import JsonFlag, console, emit, fail
from ctplhub.config import load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.security.answer_signing import jwks_of
from ctplhub.security.certificate_token import CertificateSeal
from ctplhub.security.keystore import KeysMissing, load_keys

cert_app = typer.Typer(help="E-certificates: check one offline.")


def _seal(jwks_file: Path | None) -> CertificateSeal:
    if jwks_file is not None:
        try:
            document: Any = json.loads(jwks_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            console.print(f"[red]cannot read the JWKS file {jwks_file}: {error}[/red]")
            raise typer.Exit(2) from None
        return CertificateSeal.from_jwks(document)
    try:
        keys = load_keys(load_settings().home)
    except KeysMissing as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    public = {kid: key.public_key() for kid, key in keys.signing_keys.items()}
    return CertificateSeal.from_jwks(jwks_of(public))


@cert_app.command("verify")
def verify(
    token: Annotated[str, typer.Argument(help="The certificate's token (from its QR code).")],
    jwks: Annotated[
        Path | None,
        typer.Option(help="Check against this JWKS file instead of CTPLHUB_HOME's keys."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a certificate's signature offline; exit 1 when it does not hold."""
    seal = _seal(jwks)
    try:
        sealed, valid = seal.open(token)
    except DomainError as error:
        fail(error, as_json)
        return
    c = sealed.certificate
    text = (
        f"[green]valid[/green]: certificate {c.cert_id} (key {c.kid})\n"
        f"{c.plate}  {c.vin_masked}  {c.insurer_code} {c.policy_no_masked}\n"
        f"cover {c.coverage_start} → {c.coverage_end}, issued {c.issued_at}\n"
        "(offline: ask the registry whether the policy still holds)"
        if valid
        else f"[red]invalid[/red]: the signature does not hold under key {c.kid!r}"
    )
    emit({"valid": valid, "certificate": certificate(sealed) if valid else None}, as_json, text)
    if not valid:
        raise typer.Exit(1)
