"""What an issue says, as plain data: built from its entries, frozen (as JSON) on approval.

The templates render only this snapshot, so an approved issue reads the same
however the feeds or events change afterwards. Dates are shown in the list's
time zone; the introduction is Markdown rendered with raw HTML disabled, then
sanitised like feed HTML.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markdown_it import MarkdownIt

from mailer.content.events import occurrences
from mailer.content.models import Issue, IssueEntry
from mailer.content.sanitize import sanitize_html

DEFAULT_SECTION = "News"
EVENTS_SECTION = "Upcoming events"  # the events block's name, when a topic is tied to it
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


@dataclass(frozen=True)
class NewsEntry:
    ref: int
    title: str
    link: str
    summary_html: str
    summary_text: str
    source: str
    published: str  # a date in the list's time zone, or ""
    note: str
    contributor: str = ""  # issue 14: the organisation that sent it in, for a contribution


@dataclass(frozen=True)
class EventEntry:
    ref: int
    title: str
    when: str  # in the list's time zone
    starts_at: str  # ISO 8601, UTC
    own_time: str  # the event's own local time when its zone differs, else ""
    location: str
    url: str
    description: str
    note: str
    contributor: str = ""  # issue 14: the organisation that sent it in, for a contribution


@dataclass(frozen=True)
class Section:
    name: str
    entries: tuple[NewsEntry, ...]
    topic: str = ""  # the topic the section is tied to (issue 13); "" shows it to everyone


@dataclass(frozen=True)
class Highlight:
    label: str
    news: NewsEntry | None = None
    event: EventEntry | None = None


@dataclass(frozen=True)
class ClusterBlock:
    """The cluster of the month, from its catalogue entry (issue 13)."""

    label: str
    name: str
    country: str
    sectors: str
    objectives: str
    website: str


@dataclass(frozen=True)
class SurveyEntry:
    """A survey link after an event, shown once (issue 13)."""

    question: str
    url: str
    event: str


@dataclass(frozen=True)
class Extras:
    """What issue 13 adds at approval: the sections' topics, the cluster of the month, surveys."""

    section_topics: dict[str, str] = field(default_factory=dict)
    cluster: ClusterBlock | None = None
    surveys: tuple[SurveyEntry, ...] = ()


@dataclass(frozen=True)
class IssueContent:
    issue_id: int
    number: int
    list_slug: str
    list_name: str
    date: str  # ISO date
    date_label: str
    subject: str
    preheader: str
    intro_html: str
    intro_text: str
    highlight: Highlight | None
    sections: tuple[Section, ...]
    events: tuple[EventEntry, ...]
    controller_name: str
    controller_contact: str
    controller_address: str
    purpose: str
    cadence: str
    timezone: str
    clicks_counted: bool = False  # issue 14: the mail says that clicks are counted (in aggregate)
    # -- issue 13 --
    cluster: ClusterBlock | None = None
    surveys: tuple[SurveyEntry, ...] = ()
    events_topic: str = ""

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IssueContent:
        data = dict(record)
        highlight = data.get("highlight")
        if highlight is not None:
            news, event = highlight.get("news"), highlight.get("event")
            data["highlight"] = Highlight(
                label=highlight["label"],
                news=NewsEntry(**news) if news else None,
                event=EventEntry(**event) if event else None,
            )
        data["sections"] = tuple(
            Section(s["name"], tuple(NewsEntry(**e) for e in s["entries"]), s.get("topic", ""))
            for s in data["sections"]
        )
        if data.get("cluster"):
            data["cluster"] = ClusterBlock(**data["cluster"])
        data["surveys"] = tuple(SurveyEntry(**e) for e in data.get("surveys", ()))
        data["events"] = tuple(EventEntry(**e) for e in data["events"])
        return cls(**data)


def markdown_html(source: str) -> str:
    """Markdown to HTML with raw HTML off, then through the same allow-list as feeds."""
    return sanitize_html(_markdown.render(source or "")).strip()


def date_label(moment: datetime | Any, tz: ZoneInfo) -> str:
    day = moment.astimezone(tz) if isinstance(moment, datetime) else moment
    return f"{day.day} {day:%B %Y}"


def when_label(starts: datetime, ends: datetime | None, all_day: bool, tz: ZoneInfo) -> str:
    """'Tue 13 January 2026, 15:00–16:00 CET'; all-day and multi-day forms too."""
    start = starts.astimezone(tz)
    if all_day:  # DTEND of an all-day event is exclusive
        last = (ends.astimezone(tz) if ends else start).date() - timedelta(days=1)
        if last > start.date():
            return f"{start:%a} {start.day} {start:%B} – {last.day} {last:%B %Y} (all day)"
        return f"{start:%a} {start.day} {start:%B %Y} (all day)"
    head = f"{start:%a} {start.day} {start:%B %Y}, {start:%H:%M}"
    if ends is None:
        return f"{head} {start:%Z}"
    end = ends.astimezone(tz)
    if end.date() == start.date():
        return f"{head}–{end:%H:%M} {end:%Z}"
    return f"{head} {start:%Z} – {end:%a} {end.day} {end:%B}, {end:%H:%M} {end:%Z}"


def _news(entry: IssueEntry, tz: ZoneInfo) -> NewsEntry | None:
    item = entry.item
    if item is None:
        return None
    feed = item.feed
    return NewsEntry(
        ref=entry.ref,
        title=item.title,
        link=item.link,
        summary_html=sanitize_html(item.summary_html),
        summary_text=item.summary_text,
        source=feed.label if feed is not None else "",
        published=date_label(item.published_at, tz) if item.published_at else "",
        note=entry.note,
        contributor=item.contributed_by,
    )


def _event(entry: IssueEntry, tz: ZoneInfo) -> EventEntry | None:
    event = entry.event
    if event is None or entry.starts_at is None:
        return None
    own = ""
    if not event.all_day and event.timezone not in (tz.key, ""):
        try:
            local = entry.starts_at.astimezone(ZoneInfo(event.timezone))
        except (KeyError, ValueError):
            local = entry.starts_at
        if local.utcoffset() != entry.starts_at.astimezone(tz).utcoffset():
            own = f"{local:%H:%M} {event.timezone} time"
    title, location, description = event.title, event.location, event.description
    if event.recurrence:  # one occurrence of a series may have its own words
        for occurrence in occurrences(
            event, entry.starts_at, entry.starts_at + timedelta(seconds=1), tz.key
        ):
            title, location = occurrence.title, occurrence.location
            description = occurrence.description
    return EventEntry(
        ref=entry.ref,
        title=title,
        when=when_label(entry.starts_at, entry.ends_at, event.all_day, tz),
        starts_at=entry.starts_at.isoformat(),
        own_time=own,
        location=location,
        url=event.url,
        description=description,
        note=entry.note,
        contributor=event.contributed_by,
    )


def build_content(issue: Issue, today: datetime, extras: Extras | None = None) -> IssueContent:
    """The snapshot of `issue` as it stands; `today` dates it (approval, or preview time)."""
    extras = extras or Extras()
    mailing_list = issue.mailing_list
    tz = ZoneInfo(mailing_list.timezone)
    highlight: Highlight | None = None
    sections: dict[str, list[NewsEntry]] = {}
    events: list[tuple[str, EventEntry]] = []
    for entry in sorted(issue.entries, key=lambda e: (e.position, e.ref)):
        if not entry.included:
            continue
        if entry.kind == "item":
            news = _news(entry, tz)
            if news is None:
                continue
            if entry.highlight:
                highlight = Highlight(issue.highlight_label, news=news)
                continue
            name = (
                entry.section
                or (entry.item.feed.section if entry.item and entry.item.feed else "")
                or DEFAULT_SECTION
            )
            sections.setdefault(name, []).append(news)
        else:
            occurrence = _event(entry, tz)
            if occurrence is None:
                continue
            if entry.highlight:
                highlight = Highlight(issue.highlight_label, event=occurrence)
                continue
            events.append((occurrence.starts_at, occurrence))
    day = today.astimezone(tz)
    return IssueContent(
        issue_id=issue.id,
        number=issue.number,
        list_slug=mailing_list.slug,
        list_name=mailing_list.name,
        date=day.date().isoformat(),
        date_label=date_label(day, tz),
        subject=issue.subject,
        preheader=issue.preheader,
        intro_html=markdown_html(issue.introduction),
        intro_text=issue.introduction.strip(),
        highlight=highlight,
        sections=tuple(
            Section(name, tuple(items), extras.section_topics.get(name, ""))
            for name, items in sections.items()
        ),
        events=tuple(e for _, e in sorted(events, key=lambda pair: pair[0])),
        controller_name=mailing_list.controller_name,
        controller_contact=mailing_list.controller_contact,
        controller_address=mailing_list.controller_address,
        purpose=mailing_list.purpose,
        cadence=mailing_list.cadence,
        timezone=mailing_list.timezone,
        cluster=extras.cluster,
        surveys=extras.surveys,
        events_topic=extras.section_topics.get(EVENTS_SECTION, ""),
    )
