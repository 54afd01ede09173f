"""`mailer feeds ...` and `mailer events ...` (thin commands); `issues` lives in cli_issues."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from consent.lists import get_list
from mailer.cli_issues import JsonOpt, ListOpt, base, content_runtime, issues_app
from mailer.content import calendars, events, feeds
from mailer.content.fetch import FetchPolicy, is_file_url
from mailer.content.views import event_record, feed_record

__all__ = ["events_app", "feeds_app", "issues_app"]

feeds_app = typer.Typer(help="News feeds (RSS/Atom) read for a list.", no_args_is_help=True)
events_app = typer.Typer(help="Project events: webinars, workshops, calls.", no_args_is_help=True)


# -- feeds ---------------------------------------------------------------------


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="An http(s) URL, a file:// URL or a file path")],
    list_: ListOpt,
    name: Annotated[str | None, typer.Option(help="Shown as the source of its items")] = None,
    section: Annotated[str | None, typer.Option(help="The issue section of its items")] = None,
) -> None:
    """Read a feed for a list (its items go into the next drafts)."""
    with content_runtime() as rt, rt.sessions.begin() as session:
        feed = feeds.add_feed(session, rt.clock, list_, url, name, section)
        base().out.print(f"feed {feed.id} added to {list_}: {feed.url}")


@feeds_app.command("list")
def feeds_list(
    list_: Annotated[str | None, typer.Option("--list", help="Only this list")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show feeds with their health."""
    with content_runtime() as rt, rt.sessions() as session:
        records = [feed_record(f) for f in feeds.feeds_of(session, list_)]
    if as_json:
        base().print_json(records)
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
    base().out.print(table)


def policy_for(base_url: str) -> FetchPolicy:
    return FetchPolicy(user_agent=f"mailer/0.1 (newsletter feed reader; +{base_url})")


@feeds_app.command("fetch")
def feeds_fetch(
    list_: Annotated[str | None, typer.Option("--list", help="Only this list's feeds")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every list's feeds")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch feeds now; exits 1 only if every feed failed."""
    if (list_ is None) == (not all_):
        raise base().fail("say which feeds: --list SLUG or --all")
    with content_runtime() as rt:
        with rt.sessions() as session:
            total = len(feeds.feeds_of(session, list_))
        with Progress(console=base().err, transient=True, disable=as_json) as progress:
            task = progress.add_task("fetching feeds", total=total)
            reports = asyncio.run(
                feeds.fetch_feeds(
                    rt.sessions,
                    rt.clock,
                    list_,
                    policy_for(rt.settings.base_url),
                    on_report=lambda _: progress.advance(task),
                )
            )
    if as_json:
        base().print_json([r.__dict__ for r in reports])
    else:
        table = Table("feed", "outcome", "new", "changed", "detail")
        for r in reports:
            table.add_row(r.label, r.outcome, str(r.new), str(r.changed), r.detail)
        base().out.print(table)
        failed = sum(r.outcome == "failed" for r in reports)
        base().out.print(
            f"{len(reports)} feed(s): {sum(r.new for r in reports)} new item(s), {failed} failed"
        )
    if reports and all(r.outcome == "failed" for r in reports):
        raise typer.Exit(1)


# -- events --------------------------------------------------------------------


@events_app.command("add")
def events_add(
    list_: ListOpt,
    title: Annotated[str, typer.Option(help="What it is called")],
    start: Annotated[str, typer.Option(help="Local start, e.g. 2026-02-10T15:00")],
    end: Annotated[str | None, typer.Option(help="Local end (default: one hour later)")] = None,
    tz: Annotated[str, typer.Option(help="Its time zone (default: the list's)")] = "",
    location: Annotated[str, typer.Option(help="Where, or 'Online'")] = "",
    url: Annotated[str, typer.Option(help="Page to register or read more")] = "",
    description: Annotated[str, typer.Option(help="A few sentences")] = "",
) -> None:
    """Add one event by hand."""
    spec = events.EventSpec(title, start, end, tz, location, url, description)
    with content_runtime() as rt, rt.sessions.begin() as session:
        event = events.add_event(session, rt.clock, list_, spec)
        base().out.print(f"event {event.id} added to {list_}: {event.title}")


@events_app.command("import")
def events_import(
    source: Annotated[str, typer.Argument(help="An .ics file path or http(s) URL")],
    list_: ListOpt,
) -> None:
    """Import (or update, by UID) the events of an iCalendar file or URL.

    A URL is remembered and read again before each draft (conditional GET). A calendar
    that cannot be read or is not iCalendar changes nothing: exit 2 for a file, 1 for a URL.
    """
    with content_runtime() as rt:
        policy = policy_for(rt.settings.base_url)
        report = asyncio.run(calendars.import_from(rt.sessions, rt.clock, list_, source, policy))
    if report.outcome == "failed":
        code = 2 if is_file_url(report.url) else 1
        raise base().fail(
            f"{source} was not imported: {report.detail}; the events already imported are kept",
            code,
        )
    if report.outcome == "not-modified":
        base().out.print("not modified since the last import: nothing to do")
        return
    base().out.print(f"{report.added} added, {report.updated} updated, {report.skipped} skipped")
    for problem in report.problems:
        base().err.print(f"[yellow]warning:[/] {problem}")


@events_app.command("list")
def events_list(list_: ListOpt, as_json: JsonOpt = False) -> None:
    """Show a list's events (a recurring series once, at its first occurrence)."""
    with content_runtime() as rt, rt.sessions() as session:
        tz = get_list(session, list_).timezone
        records = [event_record(e, tz) for e in events.events_of(session, list_)]
    if as_json:
        base().print_json(records)
        return
    table = Table("id", "title", "when", "zone", "recurring", "location")
    for r in records:
        table.add_row(
            str(r["id"]),
            r["title"],
            r["when"],
            r["timezone"],
            "yes" if r["recurring"] else "",
            r["location"],
        )
    base().out.print(table)


def _register() -> None:
    """Add the content command groups to `mailer` (mailer.cli imports this module)."""
    cli = base()
    for name, sub in (("feeds", feeds_app), ("events", events_app), ("issues", issues_app)):
        cli.app.add_typer(sub, name=name)


_register()
