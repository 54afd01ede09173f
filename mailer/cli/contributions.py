"""`mailer contributions ...`: the editors' queue of contributions, and their retention."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from mailer.app.wiring import Runtime
from mailer.cli.common import JsonOpt, fail, out, print_json, runtime
from mailer.contributions.service import ContributionView, UnknownContribution

app = typer.Typer(
    help="Contributions sent in through /contribute/{list}: list, show, accept, reject, purge.",
    no_args_is_help=True,
)

IdArg = Annotated[
    int, typer.Argument(help="The contribution's id (see `mailer contributions list`)")
]


@contextmanager
def _service() -> Iterator[Runtime]:
    with runtime() as rt:
        try:
            yield rt
        except UnknownContribution as exc:
            raise fail(str(exc)) from None


def _show(v: ContributionView) -> None:
    out.print(f"[bold]contribution {v.id}[/] · {v.list_slug} · [bold]{v.status}[/] · {v.kind}")
    out.print(f"[bold]title:[/] {v.title}")
    out.print(f"[bold]from:[/] {v.organisation} ({v.contact or 'contact address deleted'})")
    for label, value in (("when", v.when), ("where", v.place), ("link", v.link)):
        if value:
            out.print(f"[bold]{label}:[/] {value}")
    if v.summary_text:
        out.print(f"[bold]summary:[/] {v.summary_text}")
    out.print(f"[bold]sent in:[/] {v.submitted_at:%Y-%m-%d %H:%M} UTC")
    if v.decided_at:
        out.print(f"[bold]decided:[/] {v.decided_at:%Y-%m-%d %H:%M} UTC {v.reason}".rstrip())


@app.command("list")
def list_contributions(
    list_: Annotated[str | None, typer.Option("--list", help="Only this list")] = None,
    status: Annotated[
        str | None, typer.Option(help="unconfirmed, pending, accepted or rejected")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The contributions, oldest first; `pending` ones wait for a decision."""
    with _service() as rt:
        views = rt.contributions.listing(list_, status)
    if as_json:
        print_json([v.as_record() for v in views])
        return
    table = Table("id", "list", "status", "kind", "title", "organisation", "sent in")
    for v in views:
        table.add_row(
            str(v.id), v.list_slug, v.status, v.kind, v.title, v.organisation,
            f"{v.submitted_at:%Y-%m-%d}",
        )  # fmt: skip
    out.print(table)


@app.command("show")
def show(contribution_id: IdArg, as_json: JsonOpt = False) -> None:
    """Everything about one contribution."""
    with _service() as rt:
        view = rt.contributions.show(contribution_id)
    if as_json:
        print_json([view.as_record()])
    else:
        _show(view)


def _tell(rt: Runtime, mails: tuple[object, ...]) -> bool:
    return asyncio.run(rt.mail.deliver(mails)) == len(mails)


@app.command("accept")
def accept(contribution_id: IdArg) -> None:
    """Accept it: it enters the list's next draft, and its contact is told."""
    with _service() as rt:
        view, mails = rt.contributions.accept(contribution_id)
        told = _tell(rt, mails)
    out.print(f"contribution {view.id} accepted: it is in the next draft of {view.list_slug}")
    if not told:
        raise fail("the contact could not be told by mail (see the log)", 1)


@app.command("reject")
def reject(
    contribution_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, as the contact will read it")],
) -> None:
    """Refuse it; its contact is told why."""
    with _service() as rt:
        view, mails = rt.contributions.reject(contribution_id, reason)
        told = _tell(rt, mails)
    out.print(f"contribution {view.id} rejected")
    if not told:
        raise fail("the contact could not be told by mail (see the log)", 1)


@app.command("purge")
def purge() -> None:
    """Delete stale unconfirmed contributions; forget contacts past the retention period."""
    with _service() as rt:
        done = rt.contributions.purge()
    out.print(
        f"{done.unconfirmed_deleted} unconfirmed contributions deleted,"
        f" {done.contacts_emptied} contact addresses forgotten"
    )


@app.command("forget")
def forget(address: Annotated[str, typer.Argument(help="The contact address to forget")]) -> None:
    """Forget a contact address at once, wherever a contribution keeps it (erasure)."""
    with _service() as rt:
        count = rt.contributions.forget(address)
    out.print(f"{count} contributions no longer keep that address")
