"""Feeds (add, health, fetch now), events (add, import an .ics) and schedules (the next
five slots shown before saving) in the workspace."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from consent.addresses import InvalidInput
from mailer.cadence.cron import CadenceError, parse_duration
from mailer.cadence.schedules import ScheduleSpec
from mailer.content.events import EventSpec
from mailer.web.admin.auth import Staff, allow, check_csrf, form_of, runtime_of, text
from mailer.web.admin.desks import desks
from mailer.web.admin.render import back, is_htmx, page
from mailer.web.api.params import RowId
from mailer.workspace.schedules import next_slots

router = APIRouter(include_in_schema=False)
MAX_ICS = 1024 * 1024


async def _feeds_page(
    request: Request, staff: Staff, error: str = "", status: int = 200, **extra: Any
) -> Response:
    board = desks(request)
    context = {
        "feeds": await run_in_threadpool(board.sources.feeds),
        "slugs": await run_in_threadpool(board.lists.slugs),
        "error": error,
        "title": "Feeds",
        **extra,
    }
    return page(request, staff, "feeds.html", context, status)


@router.get("/admin/feeds")
async def feeds(request: Request, staff: Annotated[Staff, allow("feeds.view")]) -> Response:
    return await _feeds_page(request, staff)


@router.post("/admin/feeds")
async def add_feed(request: Request, staff: Annotated[Staff, allow("feeds.edit")]) -> Response:
    form = await form_of(request, staff)
    values = {k: text(form, k) for k in ("list", "url", "name", "section")}
    try:
        await run_in_threadpool(
            desks(request).sources.add_feed,
            staff.actor,
            values["list"],
            values["url"],
            values["name"],
            values["section"],
        )
    except InvalidInput as exc:
        return await _feeds_page(request, staff, str(exc), 422, values=values)
    return back("/admin/feeds")


@router.post("/admin/feeds/fetch")
async def fetch_feeds(request: Request, staff: Annotated[Staff, allow("feeds.edit")]) -> Response:
    form = await form_of(request, staff)
    try:
        reports = await desks(request).sources.fetch(staff.actor, text(form, "list"))
    except InvalidInput as exc:
        return await _feeds_page(request, staff, str(exc), 422)
    return await _feeds_page(request, staff, reports=reports)


async def _events_page(
    request: Request, staff: Staff, error: str = "", status: int = 200, **extra: Any
) -> Response:
    board = desks(request)
    slugs = await run_in_threadpool(board.lists.slugs)
    chosen = request.query_params.get("list") or (slugs[0] if slugs else "")
    found = await run_in_threadpool(board.sources.events, chosen) if chosen in slugs else []
    context = {"events": found, "slugs": slugs, "chosen": chosen, "error": error, **extra}
    return page(request, staff, "events.html", {**context, "title": "Events"}, status)


@router.get("/admin/events")
async def events(request: Request, staff: Annotated[Staff, allow("events.view")]) -> Response:
    return await _events_page(request, staff)


@router.post("/admin/events")
async def add_event(request: Request, staff: Annotated[Staff, allow("events.edit")]) -> Response:
    form = await form_of(request, staff)
    fields = ("list", "title", "start", "end", "tz", "location", "url", "description")
    values = {k: text(form, k) for k in fields}
    spec = EventSpec(
        values["title"],
        values["start"],
        values["end"] or None,
        values["tz"],
        values["location"],
        values["url"],
        values["description"],
    )
    try:
        await run_in_threadpool(desks(request).sources.add_event, staff.actor, values["list"], spec)
    except InvalidInput as exc:
        return await _events_page(request, staff, str(exc), 422, values=values)
    return back(f"/admin/events?list={values['list']}")


@router.post("/admin/events/import")
async def import_events(
    request: Request, staff: Annotated[Staff, allow("events.edit")]
) -> Response:
    form = await request.form(max_files=1, max_fields=5)
    check_csrf(request, staff, form)
    upload, slug = form.get("file"), text(form, "list")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _events_page(request, staff, "choose an .ics file to import", 422)
    data = await upload.read(MAX_ICS + 1)
    if len(data) > MAX_ICS:
        return await _events_page(request, staff, "the calendar is larger than 1 MiB", 413)
    with tempfile.TemporaryDirectory(prefix="mailer-ics-") as folder:
        path = Path(folder) / (Path(upload.filename).stem[:60] + ".ics")
        path.write_bytes(data)
        try:
            report = await desks(request).sources.import_ics(staff.actor, slug, path)
        except InvalidInput as exc:
            return await _events_page(request, staff, str(exc), 422)
    return await _events_page(request, staff, imported=report)


# -- schedules ---------------------------------------------------------------------


def _slots_preview(runtime_now: Any, values: dict[str, str]) -> tuple[list[Any], str]:
    if not values.get("cron"):
        return [], ""
    try:
        return next_slots(values["cron"], values.get("tz") or "UTC", runtime_now), ""
    except CadenceError as exc:
        return [], str(exc)


async def _schedules_page(
    request: Request, staff: Staff, values: dict[str, str], error: str = "", status: int = 200
) -> Response:
    board = desks(request)
    slots, slot_error = _slots_preview(runtime_of(request).clock.now(), values)
    context = {
        "schedules": await run_in_threadpool(board.schedules.views),
        "slugs": await run_in_threadpool(board.lists.slugs),
        "values": values,
        "slots": slots,
        "slot_error": slot_error,
        "error": error,
        "title": "Schedules",
    }
    template = "_slots.html" if is_htmx(request) else "schedules.html"
    return page(request, staff, template, context, status)


_SCHEDULE_FIELDS = ("list", "cron", "tz", "lead", "min_items", "approval", "grace", "editors")


@router.get("/admin/schedules")
async def schedules(request: Request, staff: Annotated[Staff, allow("schedules.view")]) -> Response:
    values = {k: request.query_params.get(k, "")[:200] for k in _SCHEDULE_FIELDS}
    return await _schedules_page(request, staff, values)


@router.post("/admin/schedules")
async def add_schedule(
    request: Request, staff: Annotated[Staff, allow("schedules.edit")]
) -> Response:
    form = await form_of(request, staff)
    values = {k: text(form, k) for k in _SCHEDULE_FIELDS}
    try:
        spec = ScheduleSpec(
            list_slug=values["list"],
            cron=values["cron"],
            timezone=values["tz"] or "UTC",
            lead=parse_duration(values["lead"] or "0"),
            min_items=int(values["min_items"] or 0),
            approval=values["approval"] or "required",
            grace=parse_duration(values["grace"] or "6h")
            if values["grace"]
            else timedelta(hours=6),
            editors=tuple(e.strip() for e in values["editors"].split(",") if e.strip()),
        )
        await run_in_threadpool(desks(request).schedules.add, staff.actor, spec)
    except ValueError as exc:  # CadenceError, InvalidInput, a bad number
        return await _schedules_page(request, staff, values, str(exc), 422)
    return back("/admin/schedules")


@router.post("/admin/schedules/{schedule_id}/remove")
async def remove_schedule(
    request: Request, schedule_id: RowId, staff: Annotated[Staff, allow("schedules.edit")]
) -> Response:
    await form_of(request, staff)
    try:
        await run_in_threadpool(desks(request).schedules.remove, staff.actor, schedule_id)
    except InvalidInput as exc:
        return await _schedules_page(request, staff, {}, str(exc), 404)
    return back("/admin/schedules")
