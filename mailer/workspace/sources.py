"""Feeds and events in the workspace: add, fetch now, import an .ics; each change logged.

Feeds added here must be http(s): a file path is for the command line of the
machine's own operator, never for a browser form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput
from consent.clock import Clock
from consent.lists import get_list
from mailer.accounts import oplog
from mailer.accounts.oplog import Actor
from mailer.content import calendars, events, feeds
from mailer.content.calendars import CalendarReport
from mailer.content.events import EventSpec
from mailer.content.feeds import FeedReport
from mailer.content.fetch import FetchPolicy
from mailer.content.views import event_record, feed_record


class Sources:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, policy: FetchPolicy) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy

    def feeds(self, list_slug: str | None = None) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [feed_record(f) for f in feeds.feeds_of(session, list_slug)]

    def add_feed(
        self, actor: Actor, list_slug: str, url: str, name: str = "", section: str = ""
    ) -> int:
        if not url.strip().lower().startswith(("http://", "https://")):
            raise InvalidInput("a feed added here is an http:// or https:// URL")
        with self.sessions.begin() as session:
            feed = feeds.add_feed(
                session, self.clock, list_slug, url, name or None, section or None
            )
            oplog.record(
                session, actor, self.clock.now(), "feed added", "feed", feed.id,
                {"list": list_slug, "url": feed.url},
            )  # fmt: skip
            return feed.id

    async def fetch(self, actor: Actor, list_slug: str) -> list[FeedReport]:
        reports = await feeds.fetch_feeds(self.sessions, self.clock, list_slug, self.policy)
        with self.sessions.begin() as session:
            detail = {"feeds": len(reports), "new": sum(r.new for r in reports)}
            oplog.record(
                session, actor, self.clock.now(), "feeds fetched", "list", list_slug, detail
            )
        return reports

    def events(self, list_slug: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            tz = get_list(session, list_slug).timezone
            return [event_record(e, tz) for e in events.events_of(session, list_slug)]

    def add_event(self, actor: Actor, list_slug: str, spec: EventSpec) -> int:
        with self.sessions.begin() as session:
            event = events.add_event(session, self.clock, list_slug, spec)
            oplog.record(
                session, actor, self.clock.now(), "event added", "event", event.id,
                {"list": list_slug, "title": event.title},
            )  # fmt: skip
            return event.id

    async def import_ics(self, actor: Actor, list_slug: str, path: Path) -> CalendarReport:
        """Import an uploaded calendar file (already written to `path` by the edge)."""
        report = await calendars.import_from(
            self.sessions, self.clock, list_slug, str(path), self.policy
        )
        if report.outcome == "failed":
            raise InvalidInput(f"the calendar was not imported: {report.detail}")
        with self.sessions.begin() as session:
            detail = {
                "file": path.name,
                "added": report.added,
                "updated": report.updated,
                "skipped": report.skipped,
            }
            oplog.record(
                session, actor, self.clock.now(), "events imported", "list", list_slug, detail
            )
        return report
