"""Project events: entered by hand or imported from iCalendar, expanded when recurring.

Times are stored in UTC with the event's own time zone beside them; an issue shows
them in the list's time zone. A recurring series keeps its iCalendar text (its
VEVENTs and VTIMEZONEs) and is expanded with recurring-ical-events within the
window an issue asks for. Importing from iCalendar is in `mailer.content.ical`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput, clean_text
from consent.clock import Clock
from consent.lists import get_list
from mailer.content.models import ProjectEvent


@dataclass(frozen=True)
class EventSpec:
    """An event as a person enters it: local times in the time zone `tz`."""

    title: str
    start: str | datetime
    end: str | datetime | None = None
    tz: str = ""  # empty: the list's time zone
    location: str = ""
    url: str = ""
    description: str = ""


@dataclass(frozen=True)
class Occurrence:
    event_id: int
    title: str
    starts_at: datetime  # UTC
    ends_at: datetime | None
    timezone: str
    all_day: bool
    location: str
    url: str
    description: str


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r} (use a name like Europe/Brussels)") from exc


def _local(value: str | datetime, tz: ZoneInfo, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"the {what} {value!r} is not a date and time like 2026-02-10T15:00"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _url(raw: str) -> str:
    value = raw.strip()
    if value and urlsplit(value).scheme not in ("http", "https"):
        raise InvalidInput(f"the event URL must start with http:// or https://, not {value!r}")
    return value[:2000]


def add_event(session: Session, clock: Clock, list_slug: str, spec: EventSpec) -> ProjectEvent:
    mailing_list = get_list(session, list_slug)
    tz_name = spec.tz or mailing_list.timezone
    tz = zone(tz_name)
    start = _local(spec.start, tz, "start")
    end = _local(spec.end, tz, "end") if spec.end else start + timedelta(hours=1)
    if end <= start:
        raise InvalidInput("the event must end after it starts")
    title = clean_text(spec.title, "the title", 300)
    now = clock.now()
    uid = hashlib.sha256(f"{title}\n{start.isoformat()}".encode()).hexdigest()[:32]
    event = ProjectEvent(
        list_id=mailing_list.id,
        uid=f"manual-{uid}",
        title=title,
        description=spec.description.strip()[:5000],
        location=spec.location.strip()[:500],
        url=_url(spec.url),
        starts_at=start,
        ends_at=end,
        timezone=tz_name,
        all_day=False,
        source="manual",
        created_at=now,
        updated_at=now,
    )
    if session.scalar(_by_uid(mailing_list.id, event.uid)) is not None:
        raise InvalidInput(f"{list_slug} already has {title!r} at that time")
    session.add(event)
    session.flush()
    return event


def _by_uid(list_id: int, uid: str) -> Any:
    return select(ProjectEvent).where(ProjectEvent.list_id == list_id, ProjectEvent.uid == uid)


def as_utc(value: date | datetime, tz: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tz)
    elif value.tzinfo is None:  # floating time: the list's zone
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def ical_text(component: Any, name: str, limit: int) -> str:
    value = str(component.get(name, "")).strip()
    if name != "DESCRIPTION":  # one-line fields
        value = " ".join(value.split())
    return value[:limit]


def events_of(session: Session, list_slug: str) -> list[ProjectEvent]:
    mailing_list = get_list(session, list_slug)
    return list(
        session.scalars(
            select(ProjectEvent)
            .where(ProjectEvent.list_id == mailing_list.id)
            .order_by(ProjectEvent.starts_at, ProjectEvent.id)
        )
    )


def occurrences(
    event: ProjectEvent, start: datetime, end: datetime, list_tz: str = "UTC"
) -> list[Occurrence]:
    """The event's occurrences that start within [start, end), soonest first."""

    def make(begins: datetime, ends: datetime | None, component: Any | None) -> Occurrence:
        def text(name: str, default: str, limit: int) -> str:
            return (
                ical_text(component, name, limit) or default if component is not None else default
            )

        return Occurrence(
            event_id=event.id,
            title=text("SUMMARY", event.title, 300),
            starts_at=begins,
            ends_at=ends,
            timezone=event.timezone,
            all_day=event.all_day,
            location=text("LOCATION", event.location, 500),
            url=event.url,
            description=text("DESCRIPTION", event.description, 5000),
        )

    if not event.recurrence:
        return (
            [make(event.starts_at, event.ends_at, None)] if start <= event.starts_at < end else []
        )
    tz = zone(list_tz)
    calendar = icalendar.Calendar.from_ical(event.recurrence)
    found = []
    for component in recurring_ical_events.of(calendar).between(start, end):
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            continue
        begins = as_utc(component.decoded("DTSTART"), tz)
        ends = as_utc(component.decoded("DTEND"), tz) if component.get("DTEND") else None
        if start <= begins < end:
            found.append(make(begins, ends, component))
    return sorted(found, key=lambda o: o.starts_at)


def upcoming(session: Session, list_slug: str, start: datetime, end: datetime) -> list[Occurrence]:
    """Every occurrence of the list's events within [start, end), soonest first."""
    mailing_list = get_list(session, list_slug)
    query = select(ProjectEvent).where(
        ProjectEvent.list_id == mailing_list.id,
        (ProjectEvent.recurrence.is_not(None))
        | ((ProjectEvent.starts_at >= start) & (ProjectEvent.starts_at < end)),
    )
    found: list[Occurrence] = []
    for event in session.scalars(query):
        found.extend(occurrences(event, start, end, mailing_list.timezone))
    return sorted(found, key=lambda o: (o.starts_at, o.title))
