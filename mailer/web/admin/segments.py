"""Segments: each with its count now; a filter counted as it is typed (htmx posts it to the
count endpoint, which answers a fragment), add and remove. Without JavaScript the form's
"Count readers" button posts to the same endpoint and gets the whole page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from mailer.audience.segments import SegmentInUse, UnknownSegment
from mailer.delivery.reach import Reach
from mailer.web.admin.auth import Staff, allow, form_of, text
from mailer.web.admin.desks import desks
from mailer.web.admin.render import back, is_htmx, page

router = APIRouter(include_in_schema=False)

FIELDS = ("name", "list", "filter")
DONE = {"added": "The segment is saved.", "removed": "The segment is removed."}
EXAMPLE = '{"field": "country", "op": "in", "value": ["Spain", "PT"]}'


async def _segments_page(
    request: Request,
    staff: Staff,
    values: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
    **extra: Any,
) -> Response:
    board = desks(request)
    context = {
        "segments": await run_in_threadpool(board.segments.views),
        "slugs": await run_in_threadpool(board.lists.slugs),
        "values": values or {},
        "error": error,
        "example": EXAMPLE,
        "notice": DONE.get(request.query_params.get("done", "")),
        "title": "Segments",
        **extra,
    }
    return page(request, staff, "segments.html", context, status)


@router.get("/admin/segments")
async def segments(request: Request, staff: Annotated[Staff, allow("segments.view")]) -> Response:
    return await _segments_page(request, staff)


def _counted(request: Request, values: dict[str, str]) -> tuple[Reach | None, str]:
    if not values["filter"].strip():
        return None, ""
    try:
        return desks(request).segments.count(values["list"], values["filter"]), ""
    except (InvalidInput, LookupError) as exc:  # FilterError names the path; an unknown list
        return None, str(exc.args[0]) if exc.args else str(exc)


@router.post("/admin/segments/count")
async def count(request: Request, staff: Annotated[Staff, allow("segments.view")]) -> Response:
    """How many readers the filter reaches now. It changes nothing; it is a POST because the
    filter is a document, typed into the same form that saves it."""
    form = await form_of(request, staff)
    values = {k: text(form, k) for k in FIELDS}
    reach, count_error = await run_in_threadpool(_counted, request, values)
    if is_htmx(request):  # htmx swaps only a 2xx: the mistake is the fragment's content
        context = {"reach": reach, "count_error": count_error}
        return page(request, staff, "_segment_count.html", context)
    status = 422 if count_error else 200
    return await _segments_page(
        request, staff, values, status=status, reach=reach, count_error=count_error
    )


@router.post("/admin/segments")
async def add(request: Request, staff: Annotated[Staff, allow("segments.edit")]) -> Response:
    form = await form_of(request, staff)
    values = {k: text(form, k) for k in FIELDS}
    board = desks(request)
    try:
        await run_in_threadpool(
            board.segments.add, staff.actor, values["name"], values["list"], values["filter"]
        )
    except (InvalidInput, LookupError) as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        return await _segments_page(request, staff, values, message, 422)
    return back("/admin/segments?done=added")


@router.post("/admin/segments/{name}/remove")
async def remove(
    request: Request, name: str, staff: Annotated[Staff, allow("segments.edit")]
) -> Response:
    await form_of(request, staff)
    try:
        await run_in_threadpool(desks(request).segments.remove, staff.actor, name)
    except UnknownSegment as exc:
        return await _segments_page(request, staff, error=str(exc), status=404)
    except SegmentInUse as exc:
        return await _segments_page(request, staff, error=str(exc), status=409)
    return back("/admin/segments?done=removed")
