"""`mailer subscribers add|list|import`: the people on a list."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from consent import preferences
from consent.imports import import_csv
from consent.models import Status
from consent.workflow import Announcement, Evidence
from mailer.audience.imports import ProfileColumns
from mailer.cli.common import JsonOpt, ListOpt, dump, err, fail, out, print_json, runtime

app = typer.Typer(help="Subscribers of a list.", no_args_is_help=True)


@app.command("add")
def subscribers_add(
    email: str,
    list_: Annotated[str, typer.Option("--list", help="The list's slug")],
    name: Annotated[str, typer.Option(help="The subscriber's name")] = "",
) -> None:
    """Start the double opt-in for EMAIL: a confirmation mail is sent, as from the form."""
    with runtime() as rt:
        announcements = rt.consent.request(
            list_, email, name, Evidence(method="double-opt-in", source="cli")
        )
        sent = asyncio.run(rt.mail.deliver(announcements))
        if announcements and not sent:
            raise fail("the confirmation mail could not be sent (see the log above)", 1)
        out.print(
            f"confirmation requested for {email} on {list_}"
            if announcements
            else f"nothing to do: {email} is already subscribed or was asked moments ago"
        )


@app.command("list")
def subscribers_list(
    list_: Annotated[str, typer.Option("--list", help="The list's slug")],
    status: Annotated[Status | None, typer.Option(help="Only this status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the subscribers of a list and their status."""
    with runtime() as rt:
        rows = preferences.subscribers(rt.consent, list_, status)
    if as_json:
        print_json([row.__dict__ for row in rows])
        return
    table = Table("email", "name", "status", "requested", "confirmed")
    for row in rows:
        table.add_row(
            row.email,
            row.name,
            row.status,
            f"{row.requested_at:%Y-%m-%d %H:%M}",
            f"{row.confirmed_at:%Y-%m-%d %H:%M}" if row.confirmed_at else "",
        )
    out.print(table)
    out.print(f"{len(rows)} subscriber(s)")


@app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="A UTF-8 CSV file with a header line")],
    list_: ListOpt,
    as_json: JsonOpt = False,
) -> None:
    """Import a CSV (email, name[, consented_at, consent_source, consent_text, country,
    organisation, topics]).

    Rows with evidence (consented_at and consent_source) become active; rows
    without are pending and get an invitation to confirm. Suppressed or erased
    addresses are skipped. A broken header, encoding or quoting refuses the whole
    file (exit 2, nothing written); bad rows are reported by line and skipped.
    Country (a code or English name), organisation and topics (separated by ';')
    become the reader's profile: at once with evidence, on confirmation without.
    """
    sent = 0
    with runtime() as rt:

        def announce(batch: Sequence[Announcement]) -> None:
            nonlocal sent
            sent += asyncio.run(rt.mail.deliver(batch))

        result = import_csv(
            rt.consent, rt.engine, file, list_, announce=announce, columns=ProfileColumns()
        )
    if as_json:
        dump({**result.record(), "invitations_sent": sent})
    else:
        for problem in result.problems:
            err.print(f"{file.name}: {problem}")
        hidden = result.invalid + result.duplicates - len(result.problems)
        if hidden > 0:
            err.print(f"{file.name}: ... and {hidden} more problem(s)")
        out.print(result.summary(list_, sent))
    if sent < result.pending:
        raise fail(
            f"{result.pending - sent} invitation(s) could not be sent (see the log); the rows are"
            " pending: `mailer subscribers add EMAIL --list L` sends one again",
            1,
        )
