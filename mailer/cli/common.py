"""What every command shares: the consoles, settings, a Runtime per command, errors, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from consent.addresses import InvalidInput
from consent.lists import ListExists, UnknownList
from consent.tokens import TokenError
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.content.curation import UnknownEntry, UnknownIssue
from mailer.delivery.dkim_keys import DKIMKeyError
from mailer.mail.messages import HeaderInjection
from mailer.mail.render import TemplateError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print records as a JSON array.")]
ListOpt = Annotated[str, typer.Option("--list", help="The list's slug")]
IssueArg = Annotated[int, typer.Argument(help="The issue's id (see `mailer issues list`)")]


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MAILER_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"bad settings: {problems}") from None


@contextmanager
def runtime(upgrade: bool = True) -> Iterator[Runtime]:
    """A Runtime for one command; the schema is brought up to date first."""
    settings = load_settings()
    try:
        rt = Runtime.build(settings, upgrade=upgrade)
    except Exception as exc:  # noqa: BLE001  (any failure to open it: a message and exit 1)
        raise fail(f"cannot open the database {settings.database_url!r}: {exc}", 1) from None
    try:
        with user_errors():
            yield rt
    finally:
        rt.close()


@contextmanager
def user_errors() -> Iterator[None]:
    """Input a person got wrong ends the command with a message and exit code 2."""
    try:
        yield
    except (InvalidInput, HeaderInjection, ListExists, TokenError) as exc:
        raise fail(str(exc)) from None
    except UnknownList as exc:
        raise fail(f"{exc.args[0]} (see `mailer lists list`)") from None
    except DKIMKeyError as exc:  # MAILER_DKIM_*: a key file missing or unusable
        raise fail(f"DKIM: {exc}") from None


@contextmanager
def content_runtime() -> Iterator[Runtime]:
    """A Runtime whose content errors end the command clearly (2: input, 1: the job)."""
    with runtime() as rt:
        try:
            yield rt
        except (UnknownIssue, UnknownEntry) as exc:
            raise fail(str(exc)) from None
        except TemplateError as exc:
            raise fail(f"the issue could not be rendered: {exc}", 1) from None


def print_json(records: list[dict[str, Any]]) -> None:
    sys.stdout.write(json.dumps(records, indent=2, default=str, ensure_ascii=False) + "\n")


def dump(document: Any) -> None:
    """One JSON document (an export, a report) on standard output."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
