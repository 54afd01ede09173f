"""iCalendar import for project events: add or update the events of a document by UID.

Components sharing a UID (a series and its moved instances) are kept together as
the series' iCalendar text, which `mailer.content.events.occurrences` expands on use.
Reading a calendar (URL or file) belongs to `mailer.content.calendars`, through the feed fetcher.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from consent.clock import Clock
from consent.lists import get_list
from consent.models import MailingList
from mailer.content.events import as_utc, ical_text, zone
from mailer.content.models import ProjectEvent


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int
    skipped: int
    problems: tuple[str, ...]


def _by_uid(list_id: int, uid: str) -> Any:
    return select(ProjectEvent).where(ProjectEvent.list_id == list_id, ProjectEvent.uid == uid)


def _tz_name(value: date | datetime, default: str) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        return default
    return str(getattr(value.tzinfo, "key", None) or value.tzname() or default)[:64]


def _series_text(calendar: Any, components: list[Any]) -> str:
    series = icalendar.Calendar()
    series.add("prodid", "-//mailer//project events//EN")
    series.add("version", "2.0")
    for timezone in calendar.walk("VTIMEZONE"):
        series.add_component(timezone)
    for component in components:
        series.add_component(component)
    return str(series.to_ical().decode("utf-8"))


def import_calendar(
    session: Session, clock: Clock, list_slug: str, data: bytes, source: str
) -> ImportReport:
    """Add or update the events of an iCalendar document (by UID); cancelled ones go.

    A document that is not iCalendar raises InvalidInput before any event changes."""
    mailing_list = get_list(session, list_slug)
    tz = zone(mailing_list.timezone)
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and friends
        raise InvalidInput(f"not an iCalendar file: {exc}") from exc
    by_uid: dict[str, list[Any]] = {}
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID", "")).strip()
        if not uid:
            seed = f"{component.get('SUMMARY', '')}\n{component.get('DTSTART').to_ical()!r}"
            uid = "ics-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
        by_uid.setdefault(uid[:500], []).append(component)
    added = updated = skipped = 0
    problems: list[str] = []
    now = clock.now()
    for uid, components in by_uid.items():
        master = next((c for c in components if "RECURRENCE-ID" not in c), components[0])
        existing = session.scalar(_by_uid(mailing_list.id, uid))
        try:
            fields = _fields(master, components, calendar, mailing_list, tz)
        except (InvalidInput, KeyError, ValueError, AttributeError) as exc:
            problems.append(f"{uid}: skipped: {exc}")
            skipped += 1
            continue
        if str(master.get("STATUS", "")).upper() == "CANCELLED":
            if existing is not None:
                session.delete(existing)
            skipped += 1
            continue
        if existing is None:
            session.add(
                ProjectEvent(
                    list_id=mailing_list.id,
                    uid=uid,
                    source=source[:2000],
                    created_at=now,
                    updated_at=now,
                    **fields,
                )
            )
            added += 1
        else:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.source, existing.updated_at = source[:2000], now
            updated += 1
    session.flush()
    return ImportReport(added, updated, skipped, tuple(problems))


def _fields(
    master: Any, components: list[Any], calendar: Any, mailing_list: MailingList, tz: ZoneInfo
) -> dict[str, Any]:
    if master.get("DTSTART") is None:
        raise InvalidInput("no start time")
    raw_start = master.decoded("DTSTART")
    start = as_utc(raw_start, tz)
    if master.get("DTEND") is not None:
        end: datetime | None = as_utc(master.decoded("DTEND"), tz)
    elif master.get("DURATION") is not None:
        end = start + master.decoded("DURATION")
    else:
        end = None
    recurring = any(name in master for name in ("RRULE", "RDATE")) or len(components) > 1
    return {
        "title": ical_text(master, "SUMMARY", 300) or "(untitled event)",
        "description": ical_text(master, "DESCRIPTION", 5000),
        "location": ical_text(master, "LOCATION", 500),
        "url": _safe_url(str(master.get("URL", ""))),
        "starts_at": start,
        "ends_at": end,
        "timezone": _tz_name(raw_start, mailing_list.timezone),
        "all_day": not isinstance(raw_start, datetime),
        "recurrence": _series_text(calendar, components) if recurring else None,
    }


def _safe_url(raw: str) -> str:
    value = raw.strip()
    return value[:2000] if urlsplit(value).scheme in ("http", "https") else ""
