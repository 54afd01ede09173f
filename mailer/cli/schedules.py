"""`mailer schedules add|list|remove`: a list's recurring cadence."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailer.cadence.cron import CadenceError, parse_duration
from mailer.cadence.schedules import ScheduleSpec, ScheduleView
from mailer.cli.common import JsonOpt, fail, out, print_json, runtime

app = typer.Typer(help="Recurring cadences: draft, hold or send each slot.", no_args_is_help=True)


def _record(view: ScheduleView) -> dict[str, object]:
    return {
        "id": view.id,
        "list": view.list_slug,
        "cron": view.cron,
        "timezone": view.timezone,
        "lead": view.lead,
        "min_items": view.min_items,
        "approval": view.approval,
        "editors": view.editors,
        "next_slot": view.next_slot,
        "segment": view.segment,
        "slots": [
            {
                "slot": s.slot,
                "at": s.at.isoformat(),
                "status": s.status,
                "issue": s.issue_id,
                "reason": s.reason,
            }
            for s in view.slots
        ],
    }


@app.command("add")
def schedules_add(
    list_: Annotated[str, typer.Option("--list", help="The list's slug")],
    cron: Annotated[str, typer.Option(help='Five-field cron, e.g. "0 9 * * MON"')],
    tz: Annotated[str, typer.Option("--tz", help="Time zone of the cron, e.g. Europe/Madrid")],
    lead: Annotated[
        str, typer.Option(help="Draft this long before each slot: 24h, 90m or 0")
    ] = "0",
    min_items: Annotated[int, typer.Option(help="Skip a slot with fewer new entries")] = 0,
    approval: Annotated[str, typer.Option(help="required (editors approve) or auto")] = "required",
    grace: Annotated[str, typer.Option(help="Catch up a missed slot within this: 6h")] = "6h",
    editor: Annotated[list[str] | None, typer.Option(help="An editor to tell (repeatable)")] = None,
    segment: Annotated[str | None, typer.Option(help="Send every issue to this segment")] = None,
) -> None:
    """Add a schedule to a list."""
    try:
        spec = ScheduleSpec(
            list_slug=list_,
            cron=cron,
            timezone=tz,
            lead=parse_duration(lead),
            min_items=min_items,
            approval=approval,
            grace=parse_duration(grace),
            editors=tuple(editor or ()),
            segment=segment,
        )
    except CadenceError as exc:
        raise fail(str(exc)) from None
    with runtime() as rt:
        try:
            view = rt.schedules.add(spec)
        except CadenceError as exc:
            raise fail(str(exc)) from None
    out.print(
        f"schedule {view.id} added to {view.list_slug}"
        + (f" for the segment {view.segment!r}" if view.segment else "")
        + f": next slot {view.next_slot} ({view.timezone})"
    )


@app.command("list")
def schedules_list(
    list_: Annotated[str | None, typer.Option("--list", help="Only this list")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show schedules, their next slot and what happened at their recent slots."""
    with runtime() as rt:
        views = rt.schedules.views(list_)
    if as_json:
        print_json([_record(v) for v in views])
        return
    table = Table("id", "list", "cron", "tz", "lead", "approval", "next slot", "recent slots")
    for v in views:
        recent = "; ".join(
            f"{s.slot} {s.status}" + (f" ({s.reason})" if s.reason else "") for s in v.slots[:3]
        )
        table.add_row(
            str(v.id),
            v.list_slug,
            v.cron,
            v.timezone,
            v.lead,
            v.approval,
            v.next_slot,
            recent or "-",
        )
    out.print(table)


@app.command("remove")
def schedules_remove(schedule_id: int) -> None:
    """Remove a schedule (its slot history goes with it)."""
    with runtime() as rt:
        rt.schedules.remove(schedule_id)
    out.print(f"schedule {schedule_id} removed")
