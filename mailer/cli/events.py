"""`mailer events add|import|list`: the project's events, by hand or from iCalendar."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from consent.lists import get_list
from mailer.cli.common import JsonOpt, ListOpt, content_runtime, err, fail, out, print_json
from mailer.content import calendars, events
from mailer.content.fetch import is_file_url
from mailer.content.views import event_record

app = typer.Typer(help="Project events: webinars, workshops, calls.", no_args_is_help=True)


@app.command("add")
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
        out.print(f"event {event.id} added to {list_}: {event.title}")


@app.command("import")
def events_import(
    source: Annotated[str, typer.Argument(help="An .ics file path or http(s) URL")],
    list_: ListOpt,
) -> None:
    """Import (or update, by UID) the events of an iCalendar file or URL.

    A URL is remembered and read again before each draft (conditional GET). A calendar
    that cannot be read or is not iCalendar changes nothing: exit 2 for a file, 1 for a URL.
    """
    with content_runtime() as rt:
        policy = rt.fetch_policy()
        report = asyncio.run(calendars.import_from(rt.sessions, rt.clock, list_, source, policy))
    if report.outcome == "failed":
        code = 2 if is_file_url(report.url) else 1
        raise fail(
            f"{source} was not imported: {report.detail}; the events already imported are kept",
            code,
        )
    if report.outcome == "not-modified":
        out.print("not modified since the last import: nothing to do")
        return
    out.print(f"{report.added} added, {report.updated} updated, {report.skipped} skipped")
    for problem in report.problems:
        err.print(f"[yellow]warning:[/] {problem}")


@app.command("list")
def events_list(list_: ListOpt, as_json: JsonOpt = False) -> None:
    """Show a list's events (a recurring series once, at its first occurrence)."""
    with content_runtime() as rt, rt.sessions() as session:
        tz = get_list(session, list_).timezone
        records = [event_record(e, tz) for e in events.events_of(session, list_)]
    if as_json:
        print_json(records)
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
    out.print(table)


def events_survey(
    event_id: Annotated[int, typer.Argument(help="The event's id (see `mailer events list`)")],
    url: Annotated[str, typer.Argument(help="The survey's address")],
    question: Annotated[
        str, typer.Option(help='Default: "How was <title>? Tell us in two minutes."')
    ] = "",
) -> None:
    """Link a survey to an event: the first issue after it ends shows it, once (issue 13)."""
    from mailer.content import surveys

    with content_runtime() as rt, rt.sessions.begin() as session:
        survey = surveys.attach(session, rt.clock.now(), event_id, url, question)
        out.print(f"event {event_id}: survey {survey.url} ({survey.question})")
