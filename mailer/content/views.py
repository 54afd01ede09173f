"""Issues, entries, feeds and events as plain records: what `--json` prints and the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailer.content.issue_content import when_label
from mailer.content.models import Feed, Issue, IssueEntry, ProjectEvent


def entry_record(entry: IssueEntry, tz: ZoneInfo) -> dict[str, Any]:
    title = link = source = when = ""
    if entry.kind == "item" and entry.item is not None:
        item = entry.item
        title, link = item.title, item.link
        source = item.feed.label if item.feed is not None else ""
        moment = item.published_at or item.first_seen_at
        when = f"{moment.astimezone(tz):%Y-%m-%d}"
    elif entry.kind == "event" and entry.event is not None and entry.starts_at is not None:
        event = entry.event
        title, link, source = event.title, event.url, "event"
        when = when_label(entry.starts_at, entry.ends_at, event.all_day, tz)
    section = entry.section
    if entry.kind == "item" and not section and entry.item is not None and entry.item.feed:
        section = entry.item.feed.section
    return {
        "ref": entry.ref,
        "kind": entry.kind,
        "included": entry.included,
        "highlight": entry.highlight,
        "position": entry.position,
        "section": section or ("Upcoming events" if entry.kind == "event" else "News"),
        "title": title or "(removed)",
        "source": source,
        "when": when,
        "link": link,
        "note": entry.note,
    }


def issue_summary(issue: Issue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "list": issue.mailing_list.slug,
        "number": issue.number,
        "status": issue.status.value,
        "subject": issue.subject,
        "issue_date": issue.issue_date.isoformat(),
        "entries": len(issue.entries),
        "included": sum(1 for e in issue.entries if e.included),
        "created_at": issue.created_at.isoformat(),
        "approved_at": issue.approved_at.isoformat() if issue.approved_at else None,
        "sent_at": issue.sent_at.isoformat() if issue.sent_at else None,
    }


def issue_detail(issue: Issue) -> dict[str, Any]:
    tz = ZoneInfo(issue.mailing_list.timezone)
    record = issue_summary(issue)
    record.update(
        preheader=issue.preheader,
        introduction=issue.introduction,
        highlight_label=issue.highlight_label,
        gathered_since=issue.gathered_since.isoformat() if issue.gathered_since else None,
        gathered_until=issue.gathered_until.isoformat(),
        entries=[
            entry_record(e, tz) for e in sorted(issue.entries, key=lambda e: (e.position, e.ref))
        ],
    )
    return record


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def feed_record(feed: Feed) -> dict[str, Any]:
    return {
        "id": feed.id,
        "list": feed.list.slug,
        "url": feed.url,
        "name": feed.label,
        "section": feed.section,
        "last_fetched_at": _iso(feed.last_fetched_at),
        "last_success_at": _iso(feed.last_success_at),
        "last_status": feed.last_status,
        "failures": feed.failures,
        "last_error": feed.last_error,
        "retry_at": _iso(feed.retry_at),
        "healthy": feed.failures == 0,
    }


def event_record(event: ProjectEvent, list_tz: str) -> dict[str, Any]:
    tz = ZoneInfo(list_tz)
    return {
        "id": event.id,
        "uid": event.uid,
        "title": event.title,
        "when": when_label(event.starts_at, event.ends_at, event.all_day, tz),
        "starts_at": event.starts_at.isoformat(),
        "ends_at": _iso(event.ends_at),
        "timezone": event.timezone,
        "recurring": event.recurrence is not None,
        "location": event.location,
        "url": event.url,
        "source": event.source,
    }
