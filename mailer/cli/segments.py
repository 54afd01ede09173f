"""`mailer segments add|list|count|remove`: saved filters over a list's readers, no SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from mailer.app.wiring import Runtime
from mailer.audience import segments
from mailer.cli.common import JsonOpt, ListOpt, fail, out, print_json, runtime
from mailer.delivery.reach import Reach, reach

app = typer.Typer(help="Segments: saved filters over a list's readers.", no_args_is_help=True)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except segments.UnknownSegment as exc:
        raise fail(str(exc.args[0])) from None


def _reach(rt: Runtime, name: str) -> Reach:
    return reach(rt.engine, rt.sessions, rt.settings.secret_key, name)


def _said(found: Reach) -> str:
    return (
        f"{found.reachable} reader(s) of {found.list_slug} would receive it now (active,"
        f" confirmed, not suppressed); {found.matching} match in any state"
    )


@app.command("add")
def segments_add(
    name: str,
    list_: ListOpt,
    filter_: Annotated[
        str,
        typer.Option(
            "--filter", help='JSON, e.g. {"field": "country", "op": "eq", "value": "Spain"}'
        ),
    ],
) -> None:
    """Save a segment; its live count is printed."""
    with runtime() as rt:
        with rt.sessions.begin() as session:
            segments.add(session, rt.clock.now(), name, list_, segments.read_filter(filter_))
        out.print(f"segment {name!r} saved: {_said(_reach(rt, name))}")


@app.command("list")
def segments_list(as_json: JsonOpt = False) -> None:
    """Every segment, its filter and its live count."""
    with runtime() as rt:
        with rt.sessions() as session:
            records = [segments.record(session, s) for s in segments.all_segments(session)]
        for record in records:
            found = _reach(rt, str(record["name"]))
            record.update(matching=found.matching, reachable=found.reachable)
    if as_json:
        print_json(records)
        return
    table = Table("name", "list", "reachable", "filter")
    for r in records:
        table.add_row(str(r["name"]), str(r["list"]), str(r["reachable"]), str(r["filter"]))
    out.print(table)


@app.command("count")
def segments_count(name: str, as_json: JsonOpt = False) -> None:
    """How many readers the segment reaches now."""
    with runtime() as rt, _errors():
        found = _reach(rt, name)
    if as_json:
        print_json([found.__dict__])
    else:
        out.print(f"segment {name!r}: {_said(found)}")


@app.command("remove")
def segments_remove(name: str) -> None:
    """Remove a segment (refused while a schedule targets it)."""
    with runtime() as rt, _errors(), rt.sessions.begin() as session:
        segments.remove(session, name)
    out.print(f"segment {name!r} removed")
