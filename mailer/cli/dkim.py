"""`mailer dkim keygen|show`: DKIM keys made, and the DNS records to publish for them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailer.cli.common import err, fail, load_settings
from mailer.delivery.composer import signer_from
from mailer.delivery.dkim_keys import (
    KINDS,
    MIN_RSA_BITS,
    DKIMKey,
    DKIMKeyError,
    Kind,
    write_key_file,
)

app = typer.Typer(help="DKIM signing keys and their DNS records.", no_args_is_help=True)


@app.command("keygen")
def keygen(
    selector: Annotated[str, typer.Option(help="The selector (s=), e.g. news2026")],
    domain: Annotated[str, typer.Option(help="The signing domain (d=), e.g. example.org")],
    algorithm: Annotated[str, typer.Option(help="rsa or ed25519")] = "rsa",
    bits: Annotated[int | None, typer.Option(help="RSA key size: 2048 to 4096")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Key file to write [default: dkim-SELECTOR.pem]")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key file")] = False,
) -> None:
    """Make a key, write it (mode 0600) and print the DNS TXT record to publish."""
    if algorithm not in KINDS:
        raise fail(f"--algorithm is rsa or ed25519, not {algorithm!r}")
    kind: Kind = "rsa" if algorithm == "rsa" else "ed25519"
    if bits is not None and kind != "rsa":
        raise fail("--bits is for RSA keys; Ed25519 keys have one size")
    path = out or Path(f"dkim-{selector}.pem")
    try:
        key = DKIMKey.generate(selector, domain, kind, bits or MIN_RSA_BITS)
        write_key_file(key, path, replace=force)
    except DKIMKeyError as exc:
        raise fail(str(exc)) from None
    except FileExistsError:
        raise fail(f"{path} exists: give --force to replace it") from None
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
    sys.stdout.write(key.zone_line + "\n")
    err.print(
        f"wrote the private key to {path} (mode 0600). Publish the record above, then set"
        f" MAILER_DKIM_SELECTOR={key.selector} and MAILER_DKIM_KEY_FILE={path.resolve()}"
        f" (or add {key.selector}:{path.resolve()} to MAILER_DKIM_KEYS).",
    )


@app.command("show")
def show() -> None:
    """Print the DNS TXT record of every key the settings sign with."""
    settings = load_settings()
    try:
        signer = signer_from(settings)
    except DKIMKeyError as exc:
        raise fail(str(exc)) from None
    if signer is None:
        err.print(
            "DKIM signing is off: set MAILER_DKIM_SELECTOR and MAILER_DKIM_KEY_FILE,"
            " or MAILER_DKIM_KEYS (see `mailer dkim keygen`)."
        )
        raise typer.Exit(1)
    for key in signer.keys:
        sys.stdout.write(key.zone_line + "\n")
