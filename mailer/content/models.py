"""Tables of content: feeds and their items, calendars, project events, issues and their entries."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consent.models import Base, MailingList, UTCDateTime


class IssueStatus(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"


class FetchedSource:
    """What a source read over HTTP keeps: validators for a conditional GET, and its health."""

    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    def read(self, now: datetime, status: int | None) -> None:
        self.last_fetched_at, self.last_status = now, status

    def failed(self, error: str, retry_at: datetime | None) -> None:
        """One more failure in a row; a 429/503's wait is kept until it passes."""
        self.failures += 1
        self.retry_at, self.last_error = retry_at, error

    def succeeded(self, now: datetime, validators: tuple[str | None, str | None] | None) -> None:
        """Healthy again; new validators (ETag, Last-Modified) when the body was new."""
        self.failures, self.last_error, self.retry_at = 0, "", None
        self.last_success_at = now
        if validators is not None:
            self.etag, self.last_modified = validators


class Feed(FetchedSource, Base):
    """A news feed (RSS/Atom, over HTTP or a local file) read for one list; with its health."""

    __tablename__ = "feeds"
    __table_args__ = (UniqueConstraint("list_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    name: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(String(300), default="")  # as the feed calls itself
    section: Mapped[str] = mapped_column(String(100), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    list: Mapped[MailingList] = relationship()

    @property
    def label(self) -> str:
        return self.name or self.title or self.url


class FeedItem(Base):
    """One story, deduplicated across the feeds of a list (by GUID, link, then content)."""

    __tablename__ = "feed_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[int | None] = mapped_column(
        ForeignKey("feeds.id", ondelete="SET NULL"), nullable=True, index=True
    )
    guid: Mapped[str | None] = mapped_column(Text, nullable=True)
    guid_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    link: Mapped[str] = mapped_column(Text, default="")
    link_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text)
    summary_html: Mapped[str] = mapped_column(Text, default="")
    summary_text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(300), default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Older than the new-feed window when first seen: kept for dedupe, never gathered.
    backlog: Mapped[bool] = mapped_column(Boolean, default=False)
    # Issue 14: the organisation whose accepted contribution this item is ("" for feeds).
    contributed_by: Mapped[str] = mapped_column(String(200), default="")

    feed: Mapped[Feed | None] = relationship()


class Calendar(FetchedSource, Base):
    """An iCalendar URL a list's events are imported from, read again before each draft;
    with its validators (conditional GET) and its health, like a feed's."""

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("list_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    list: Mapped[MailingList] = relationship()


class ProjectEvent(Base):
    """A project event (webinar, workshop, call): one occurrence or a recurring series."""

    __tablename__ = "project_events"
    __table_args__ = (UniqueConstraint("list_id", "uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    uid: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    url: Mapped[str] = mapped_column(String(2000), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    # The iCalendar text of a recurring series (its VEVENTs and VTIMEZONEs), expanded on use.
    recurrence: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(2000), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Issue 14: the organisation whose accepted contribution this event is ("" otherwise).
    contributed_by: Mapped[str] = mapped_column(String(200), default="")


class Issue(Base):
    """One newsletter issue of a list: drafted, curated, approved (frozen), then sent.

    `id` is the number the command line and the API use; `number` counts per list and
    is what readers see. Approval stores the frozen `content` and its `compiled` form.
    """

    __tablename__ = "issues"
    __table_args__ = (UniqueConstraint("list_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[IssueStatus] = mapped_column(
        Enum(
            IssueStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        index=True,
    )
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(String(300), default="")
    introduction: Mapped[str] = mapped_column(Text, default="")  # Markdown
    highlight_label: Mapped[str] = mapped_column(String(100), default="Highlight")
    issue_date: Mapped[date] = mapped_column(Date)
    gathered_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    gathered_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    compiled: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    entries: Mapped[list[IssueEntry]] = relationship(
        back_populates="issue",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="IssueEntry.position",
    )
    mailing_list: Mapped[MailingList] = relationship()


class IssueEntry(Base):
    """A news item or an event occurrence in an issue, as the editor arranged it."""

    __tablename__ = "issue_entries"
    __table_args__ = (UniqueConstraint("issue_id", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    ref: Mapped[int] = mapped_column(Integer)  # the entry's number within its issue
    kind: Mapped[str] = mapped_column(String(10))  # "item" or "event"
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("feed_items.id", ondelete="SET NULL"), nullable=True, index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("project_events.id", ondelete="SET NULL"), nullable=True, index=True
    )
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(100), default="")
    included: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(Text, default="")
    highlight: Mapped[bool] = mapped_column(Boolean, default=False)

    issue: Mapped[Issue] = relationship(back_populates="entries")
    item: Mapped[FeedItem | None] = relationship()
    event: Mapped[ProjectEvent | None] = relationship()


# -- issue 14: how a list's issues are published --------------------------------------


class ListPublication(Base):
    """A list's publication switches: its public archive (on unless switched off) and the
    aggregate counting of clicks (off unless switched on). No row means the defaults."""

    __tablename__ = "list_publication"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    archive: Mapped[bool] = mapped_column(Boolean, default=True)
    count_clicks: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
