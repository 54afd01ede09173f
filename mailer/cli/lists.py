"""`mailer lists create|list|show`: lists as purposes, with their consent texts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from consent.lists import ListSpec, all_lists, create_list, get_list, list_view
from mailer.cli.common import JsonOpt, out, print_json, runtime

app = typer.Typer(
    help="Lists: one purpose each, with a versioned consent text.", no_args_is_help=True
)


@app.command("create")
def lists_create(
    slug: Annotated[str, typer.Argument(help="Short name used in URLs, e.g. cyber-news")],
    name: Annotated[str, typer.Option(help="The list's name as subscribers see it")],
    purpose: Annotated[str, typer.Option(help="The specific purpose of processing")],
    cadence: Annotated[str, typer.Option(help="How often, e.g. 'monthly'")],
    controller: Annotated[str, typer.Option(help="Who is the controller")],
    contact: Annotated[str, typer.Option(help="The controller's contact address")],
    consent_text: Annotated[str, typer.Option(help="The exact text beside the consent box")],
    address: Annotated[str, typer.Option(help="The controller's postal address")] = "",
    timezone: Annotated[str, typer.Option(help="The list's time zone")] = "UTC",
    phone: Annotated[str, typer.Option(help="The controller's phone (consent receipts)")] = "",
) -> None:
    """Create a list (one purpose) with its first consent text."""
    with runtime() as rt, rt.sessions.begin() as session:
        created = create_list(
            session,
            rt.clock,
            ListSpec(
                slug,
                name,
                purpose,
                cadence,
                controller,
                contact,
                consent_text,
                address,
                timezone,
                controller_phone=phone,
            ),
        )
        out.print(f"created list {created.slug} (consent text v1)")


@app.command("list")
def lists_list(as_json: JsonOpt = False) -> None:
    """Show every list."""
    with runtime() as rt, rt.sessions() as session:
        records = [list_view(m).record() for m in all_lists(session)]
    if as_json:
        print_json(records)
        return
    table = Table("slug", "name", "cadence", "controller", "text")
    for r in records:
        table.add_row(
            r["slug"], r["name"], r["cadence"], r["controller_name"], f"v{r['text_version']}"
        )
    out.print(table)


@app.command("show")
def lists_show(slug: str, as_json: JsonOpt = False) -> None:
    """Show one list, with its consent text history."""
    with runtime() as rt, rt.sessions() as session:
        m = get_list(session, slug)
        record = list_view(m).record()
        record["texts"] = [
            {"version": t.version, "sha256": t.sha256, "created_at": t.created_at, "text": t.text}
            for t in m.texts
        ]
    if as_json:
        print_json([record])
        return
    for key, value in record.items():
        if key not in ("texts", "consent_text", "text_version", "text_sha256"):
            out.print(f"[bold]{key}:[/] {value}")
    for t in record["texts"]:
        out.print(f"[bold]consent text v{t['version']}[/] ({t['sha256'][:12]}…): {t['text']}")
