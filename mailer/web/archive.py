"""The public archive's pages: a list's sent issues, each issue's web copy, an Atom feed.

Every answer carries an ETag (a digest of the body) and a Last-Modified, and a
matching conditional GET gets 304 with no body. No cookie is set, no script runs,
and the default Content-Security-Policy lets the pages load nothing from anywhere.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mailer.app.wiring import Runtime
from mailer.archive.service import Listing, NotInArchive
from mailer.web.errors import error_response

router = APIRouter(include_in_schema=False)

MAX_AGE = 300  # seconds a cache may keep a page before asking again (withholding takes effect)
Page = Annotated[int, Query(ge=1, le=100_000)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present; else If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= when


def cached(
    request: Request, body: bytes, media_type: str, last_modified: datetime | None
) -> Response:
    """The body with its validators, or 304 when the client's copy is current."""
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}"}
    if last_modified is not None:
        headers["Last-Modified"] = _http_date(last_modified)
    if _not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _absent(request: Request, exc: NotInArchive) -> Response:
    return error_response(request, 404, "Not in the archive", str(exc))


def _render(request: Request, template: str, context: dict[str, object]) -> bytes:
    page = request.app.state.templates.get_template(template)
    return str(page.render({"request": request, **context})).encode("utf-8")


@router.api_route("/archive/{slug}", methods=["GET", "HEAD"])
async def archive(request: Request, slug: str, page: Page = 1) -> Response:
    runtime = _runtime(request)
    try:
        listing: Listing = await run_in_threadpool(runtime.archive.listing, slug, page)
    except NotInArchive as exc:
        return _absent(request, exc)
    body = _render(request, "archive.html", {"listing": listing, "title": listing.list_name})
    return cached(request, body, "text/html; charset=utf-8", listing.last_modified)


@router.api_route("/archive/{slug}/feed.xml", methods=["GET", "HEAD"])
async def feed(request: Request, slug: str) -> Response:
    runtime = _runtime(request)
    try:
        listing = await run_in_threadpool(runtime.archive.feed, slug)
    except NotInArchive as exc:
        return _absent(request, exc)
    base = runtime.settings.base_url
    updated = listing.last_modified or datetime(1970, 1, 1, tzinfo=UTC)
    body = _render(
        request,
        "archive_feed.xml",
        {"listing": listing, "base": base, "updated": updated.astimezone(UTC).isoformat()},
    )
    return cached(request, body, "application/atom+xml; charset=utf-8", listing.last_modified)


@router.api_route("/archive/{slug}/{number}", methods=["GET", "HEAD"])
async def issue(request: Request, slug: str, number: str) -> Response:
    runtime = _runtime(request)
    if not (number.isascii() and number.isdigit()) or len(number) > 9:
        return _absent(request, NotInArchive(f"{number[:20]!r} is not an issue number"))
    try:
        shown = await run_in_threadpool(runtime.archive.issue, slug, int(number))
    except NotInArchive as exc:
        return _absent(request, exc)
    return cached(
        request, shown.html.encode("utf-8"), "text/html; charset=utf-8", shown.last_modified
    )
