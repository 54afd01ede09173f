"""`mailer feeds add|list|fetch`: the news feeds read for a list."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from mailer.cli.common import JsonOpt, ListOpt, content_runtime, err, fail, out, print_json
from mailer.content import feeds
from mailer.content.views import feed_record

app = typer.Typer(help="News feeds (RSS/Atom) read for a list.", no_args_is_help=True)


@app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="An http(s) URL, a file:// URL or a file path")],
    list_: ListOpt,
    name: Annotated[str | None, typer.Option(help="Shown as the source of its items")] = None,
    section: Annotated[str | None, typer.Option(help="The issue section of its items")] = None,
) -> None:
    """Read a feed for a list (its items go into the next drafts)."""
    with content_runtime() as rt, rt.sessions.begin() as session:
        feed = feeds.add_feed(session, rt.clock, list_, url, name, section)
        out.print(f"feed {feed.id} added to {list_}: {feed.url}")


@app.command("list")
def feeds_list(
    list_: Annotated[str | None, typer.Option("--list", help="Only this list")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show feeds with their health."""
    with content_runtime() as rt, rt.sessions() as session:
        records = [feed_record(f) for f in feeds.feeds_of(session, list_)]
    if as_json:
        print_json(records)
        return
    table = Table("id", "list", "name", "url", "status", "failures", "last error")
    for r in records:
        table.add_row(
            str(r["id"]),
            r["list"],
            r["name"],
            r["url"],
            str(r["last_status"] or ""),
            str(r["failures"]),
            r["last_error"],
        )
    out.print(table)


@app.command("fetch")
def feeds_fetch(
    list_: Annotated[str | None, typer.Option("--list", help="Only this list's feeds")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every list's feeds")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch feeds now; exits 1 only if every feed failed."""
    if (list_ is None) == (not all_):
        raise fail("say which feeds: --list SLUG or --all")
    with content_runtime() as rt:
        with rt.sessions() as session:
            total = len(feeds.feeds_of(session, list_))
        with Progress(console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task("fetching feeds", total=total)
            reports = asyncio.run(
                feeds.fetch_feeds(
                    rt.sessions,
                    rt.clock,
                    list_,
                    rt.fetch_policy(),
                    on_report=lambda _: progress.advance(task),
                )
            )
    if as_json:
        print_json([r.__dict__ for r in reports])
    else:
        table = Table("feed", "outcome", "new", "changed", "detail")
        for r in reports:
            table.add_row(r.label, r.outcome, str(r.new), str(r.changed), r.detail)
        out.print(table)
        failed = sum(r.outcome == "failed" for r in reports)
        out.print(
            f"{len(reports)} feed(s): {sum(r.new for r in reports)} new item(s), {failed} failed"
        )
    if reports and all(r.outcome == "failed" for r in reports):
        raise typer.Exit(1)
