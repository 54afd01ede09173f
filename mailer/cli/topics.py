"""`mailer topics ...` and `mailer profiles ...`: a list's topics and the issue sections tied
to them, the optional questions of its form, and what a reader told us."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from consent.lists import get_list
from mailer.audience import profiles, topics
from mailer.cli.common import JsonOpt, ListOpt, dump, fail, out, print_json, runtime

app = typer.Typer(help="Topics: per-list interest groups tied to sections.", no_args_is_help=True)
profiles_app = typer.Typer(help="Readers' profiles and the form's questions.", no_args_is_help=True)

SectionOpt = Annotated[
    list[str] | None, typer.Option("--section", help="An issue section's name (repeatable)")
]


@app.command("add")
def topics_add(
    slug: str,
    list_: ListOpt,
    label: Annotated[str, typer.Option(help='What readers see, e.g. "Policy and funding"')],
    about: Annotated[str, typer.Option(help="What choosing it means, shown on the form")] = "",
    section: SectionOpt = None,
) -> None:
    """Add a topic to a list, tied to issue sections."""
    with runtime() as rt, rt.sessions.begin() as session:
        topics.add_topic(session, list_, slug, label, about, section or ())
    out.print(f"topic {slug} added to {list_}")


@app.command("tie")
def topics_tie(slug: str, list_: ListOpt, section: SectionOpt = None) -> None:
    """Tie more issue sections to a topic ("Upcoming events" is the events block)."""
    if not section:
        raise fail("name at least one --section")
    with runtime() as rt, rt.sessions.begin() as session:
        try:
            topics.tie(session, list_, slug, section)
        except topics.UnknownTopic as exc:
            raise fail(str(exc.args[0])) from None
    out.print(f"topic {slug}: {', '.join(section)} tied")


@app.command("list")
def topics_list(list_: ListOpt, as_json: JsonOpt = False) -> None:
    """A list's topics and their sections."""
    with runtime() as rt, rt.sessions() as session:
        mailing_list = get_list(session, list_)
        records: list[dict[str, Any]] = [
            {"slug": t.slug, "label": t.label, "about": t.about,
             "sections": topics.sections_of(session, t)}
            for t in topics.topics_of(session, mailing_list.id)
        ]  # fmt: skip
    if as_json:
        print_json(records)
        return
    table = Table("slug", "label", "sections", "about")
    for r in records:
        table.add_row(str(r["slug"]), str(r["label"]), ", ".join(r["sections"]), str(r["about"]))
    out.print(table)


@app.command("remove")
def topics_remove(slug: str, list_: ListOpt) -> None:
    """Remove a topic; readers who chose it no longer have it."""
    with runtime() as rt, rt.sessions.begin() as session:
        try:
            topics.remove_topic(session, list_, slug)
        except topics.UnknownTopic as exc:
            raise fail(str(exc.args[0])) from None
    out.print(f"topic {slug} removed from {list_}")


@profiles_app.command("ask")
def profiles_ask(
    list_: ListOpt,
    organisation: Annotated[bool, typer.Option("--organisation/--no-organisation")] = False,
    country: Annotated[bool, typer.Option("--country/--no-country")] = False,
    topics_: Annotated[bool, typer.Option("--topics/--no-topics")] = False,
) -> None:
    """Choose the optional questions of the list's form and preferences page."""
    with runtime() as rt, rt.sessions.begin() as session:
        topics.set_questions(session, list_, organisation, country, topics_)
    asked = [n for n, on in (("organisation", organisation), ("country", country),
                             ("topics", topics_)) if on]  # fmt: skip
    out.print(f"{list_} asks: {', '.join(asked) or 'nothing more'}")


@profiles_app.command("show")
def profiles_show(email: str) -> None:
    """What a reader told us about themselves (JSON)."""
    with runtime() as rt, rt.sessions() as session:
        record = profiles.record_of(session, email)
    if record is None:
        raise fail("no subscriber has this address")
    dump(record)
