"""`mailer users add|list|remove|reset-password|totp`: who may log in to the workspace."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from mailer.accounts.oplog import Actor
from mailer.accounts.users import UserService
from mailer.cli.common import JsonOpt, fail, out, print_json, runtime

app = typer.Typer(help="Workspace users (admin, editor, auditor).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (one line)"),
]


def _actor() -> Actor:
    """The command line acts as an admin, named after the operating-system account."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Actor(f"cli:{name}", "admin")


def _stdin_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise fail("--password-stdin: no password on standard input")
    return line.rstrip("\r\n")


@app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help="admin, editor or auditor")],
    password_stdin: PasswordStdin = False,
    require_totp: Annotated[
        bool, typer.Option("--require-totp", help="They must set up a second factor at login")
    ] = False,
) -> None:
    """Add a user; without --password-stdin a password is generated and printed once."""
    password = _stdin_password() if password_stdin else None
    with runtime() as rt:
        view, generated = UserService(rt.sessions, rt.clock).add(
            _actor(), email, role, password, require_totp
        )
    out.print(f"{view.role} {view.email} added")
    if generated:
        out.print(f"password: {generated}")
        out.print(
            "(shown once: hand it over safely; `mailer users reset-password` makes a new one)"
        )


@app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """Show the users, their role and second factor."""
    with runtime() as rt:
        views = UserService(rt.sessions, rt.clock).list()
    if as_json:
        print_json([v.record() for v in views])
        return
    table = Table("email", "role", "second factor", "since")
    for v in views:
        factor = "set up" if v.totp else ("required" if v.totp_required else "")
        table.add_row(v.email, v.role, factor, f"{v.created_at:%Y-%m-%d}")
    out.print(table)
    out.print(f"{len(views)} user(s)")


@app.command("remove")
def users_remove(email: str) -> None:
    """Remove a user (their sessions end at once; the operations log keeps their name)."""
    with runtime() as rt:
        UserService(rt.sessions, rt.clock).remove(_actor(), email)
    out.print(f"{email} removed")


@app.command("reset-password")
def users_reset_password(email: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (generated and printed once, unless --password-stdin).

    Every session of the user ends: they are logged out everywhere.
    """
    password = _stdin_password() if password_stdin else None
    with runtime() as rt:
        generated = UserService(rt.sessions, rt.clock).reset_password(_actor(), email, password)
    out.print(f"password of {email} changed; their sessions have ended")
    if generated:
        out.print(f"password: {generated}")


@app.command("totp")
def users_totp(
    email: str,
    off: Annotated[
        bool, typer.Option("--off", help="Stop requiring it, forget the secret")
    ] = False,
) -> None:
    """Require a second factor (TOTP) of a user: they set it up at their next login."""
    with runtime() as rt:
        UserService(rt.sessions, rt.clock).require_totp(_actor(), email, not off)
    out.print(f"second factor {'no longer required' if off else 'required'} for {email}")
