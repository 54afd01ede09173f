"""Calendars a list's events come from, read through the feed fetcher and imported by UID.

An http(s) calendar is remembered per list (`calendars`): its ETag and Last-Modified
go back as a conditional GET, so an unchanged calendar costs a 304, and its health
(last status, consecutive failures, last error, `retry_at` after a 429/503) is kept
like a feed's. The fetch policy's size cap, timeout and User-Agent apply; a
calendar over the cap is refused whole (a cut .ics is a corrupt one), and a
calendar that fails in any way leaves the events already imported as they are.
A file is read once, with the same cap, and not remembered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput
from consent.clock import Clock
from consent.lists import get_list
from mailer.content.fetch import (
    Fetched,
    FetchPolicy,
    HostLimits,
    client_for,
    fetch,
    is_file_url,
    normalise_location,
)
from mailer.content.ical import import_calendar
from mailer.content.models import Calendar

ACCEPT = "text/calendar, application/ics;q=0.9, */*;q=0.5"


@dataclass(frozen=True)
class CalendarReport:
    """What one read of one calendar did, for the summary a person reads."""

    url: str
    outcome: str  # "updated", "not-modified", "skipped", "failed"
    status: int | None = None
    added: int = 0
    updated: int = 0
    skipped: int = 0
    detail: str = ""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Known:
    calendar_id: int | None  # None: a file, read once
    url: str
    etag: str | None = None
    last_modified: str | None = None


def calendars_of(session: Session, list_slug: str) -> list[Calendar]:
    mailing_list = get_list(session, list_slug)
    query = select(Calendar).where(Calendar.list_id == mailing_list.id).order_by(Calendar.id)
    return list(session.scalars(query))


def _remember(session: Session, list_slug: str, url: str, now: datetime) -> _Known:
    """The list's calendar at `url` (added if new); a file is not remembered."""
    mailing_list = get_list(session, list_slug)
    if is_file_url(url):
        return _Known(None, url)
    if len(url) > 2000:
        raise InvalidInput("the calendar URL is longer than 2000 characters")
    calendar = session.scalar(
        select(Calendar).where(Calendar.list_id == mailing_list.id, Calendar.url == url)
    )
    if calendar is None:
        calendar = Calendar(
            list_id=mailing_list.id, url=url, added_at=now, failures=0, last_error=""
        )
        session.add(calendar)
        session.flush()
    return _Known(calendar.id, calendar.url, calendar.etag, calendar.last_modified)


async def import_from(
    sessions: sessionmaker[Session],
    clock: Clock,
    list_slug: str,
    location: str,
    policy: FetchPolicy,
    client: httpx.AsyncClient | None = None,
) -> CalendarReport:
    """Read one calendar (an http(s) URL, a file:// URL or a path) and import its events.

    An http(s) calendar is remembered by the list, and read with a conditional GET
    when it is known already. Raises InvalidInput for a location that cannot be
    read at all (no such file, no such list); every other failure is in the report.
    """
    url = normalise_location(location, "calendar")

    def remember() -> _Known:
        with sessions.begin() as session:
            return _remember(session, list_slug, url, clock.now())

    known = await asyncio.to_thread(remember)
    own = client is None
    http = client or client_for(policy)
    try:
        return await _read(sessions, clock, list_slug, known, policy, http, None)
    finally:
        if own:
            await http.aclose()


async def refresh_calendars(
    sessions: sessionmaker[Session],
    clock: Clock,
    list_slug: str,
    policy: FetchPolicy,
    client: httpx.AsyncClient | None = None,
) -> list[CalendarReport]:
    """Read again every calendar the list remembers; one failing never stops another."""
    now = clock.now()

    def due() -> tuple[list[_Known], list[CalendarReport]]:
        ready, waiting = [], []
        with sessions() as session:
            for c in calendars_of(session, list_slug):
                if c.retry_at is not None and c.retry_at > now:
                    detail = f"the server asked to wait until {c.retry_at:%Y-%m-%d %H:%M} UTC"
                    waiting.append(CalendarReport(c.url, "skipped", c.last_status, detail=detail))
                else:
                    ready.append(_Known(c.id, c.url, c.etag, c.last_modified))
        return ready, waiting

    ready, reports = await asyncio.to_thread(due)
    limits = HostLimits(policy.per_host, policy.concurrency)
    own = client is None
    http = client or client_for(policy)
    try:
        reports += await asyncio.gather(
            *(_read(sessions, clock, list_slug, k, policy, http, limits) for k in ready)
        )
    finally:
        if own:
            await http.aclose()
    return reports


async def _read(
    sessions: sessionmaker[Session],
    clock: Clock,
    list_slug: str,
    known: _Known,
    policy: FetchPolicy,
    http: httpx.AsyncClient,
    limits: HostLimits | None,
) -> CalendarReport:
    now = clock.now()
    got = await fetch(
        http,
        known.url,
        now,
        policy,
        etag=known.etag,
        last_modified=known.last_modified,
        limits=limits,
        accept=ACCEPT,
    )

    def store() -> CalendarReport:
        with sessions.begin() as session:
            return _store(session, clock, list_slug, known, got, now)

    # Parsing and importing a large calendar is real work: not on the event loop.
    return await asyncio.to_thread(store)


def _note_read(session: Session, calendar: Calendar, got: Fetched, now: datetime) -> None:
    """When it was read and what it answered; a permanent redirect moves it (unless taken)."""
    calendar.read(now, got.status)
    if got.moved_to and got.moved_to != calendar.url and len(got.moved_to) <= 2000:
        taken = select(Calendar.id).where(
            Calendar.list_id == calendar.list_id, Calendar.url == got.moved_to
        )
        if session.scalar(taken) is None:
            calendar.url = got.moved_to


def _store(
    session: Session, clock: Clock, list_slug: str, known: _Known, got: Fetched, now: datetime
) -> CalendarReport:
    """Apply one read to the calendar's health and, when it brought a document, import it."""
    calendar = session.get(Calendar, known.calendar_id) if known.calendar_id else None
    if calendar is not None:
        _note_read(session, calendar, got, now)
    url = calendar.url if calendar is not None else known.url

    def failed(detail: str) -> CalendarReport:
        if calendar is not None:
            calendar.failed(detail, got.retry_at)
        return CalendarReport(url, "failed", got.status, detail=detail)

    if got.error is not None:
        return failed(got.error)
    report = CalendarReport(url, "not-modified", got.status)
    if not got.not_modified and got.body is not None:
        try:  # import_calendar refuses a document before it changes any event
            imported = import_calendar(session, clock, list_slug, got.body, url)
        except InvalidInput as exc:
            return failed(str(exc))
        report = CalendarReport(
            url,
            "updated",
            got.status,
            imported.added,
            imported.updated,
            imported.skipped,
            problems=imported.problems,
        )
    if calendar is not None:
        calendar.succeeded(now, None if got.not_modified else (got.etag, got.last_modified))
    return report
