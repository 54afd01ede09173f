"""A contribution as sent in, checked and cleaned: pure, no database.

Titles become plain text and summaries go through the feed allow-list (nh3, with
tracking parameters stripped), exactly as feed content does; a summary may hold
at most a few links. Event times are local times in a named time zone, stored in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consent.addresses import InvalidInput, clean_text, normalise_address
from mailer.content.sanitize import html_to_text, plain_text, sanitize_html, strip_tracking

KINDS = ("news", "event")
ONLINE = "Online"
SUMMARY_LIMIT = 1500  # characters of text
_BLOCK = re.compile(r"<\s*(p|ul|ol|blockquote|pre|br)\b", re.IGNORECASE)
_BARE_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\s", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Submission:
    """The fields of the form (or of a JSON body), as typed."""

    kind: str
    title: str
    organisation: str
    contact: str
    link: str = ""
    summary: str = ""
    start: str = ""  # local date and time, e.g. 2026-02-10T15:00
    end: str = ""
    timezone: str = ""
    place: str = ""
    online: bool = False


@dataclass(frozen=True)
class Checked:
    kind: str
    title: str
    organisation: str
    contact: str  # normalised address
    link: str
    summary_html: str
    summary_text: str
    starts_at: datetime | None
    ends_at: datetime | None
    timezone: str
    place: str


def _link(raw: str, required: bool) -> str:
    value = raw.strip()
    if not value:
        if required:
            raise InvalidInput("the link is required")
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2000:
        raise InvalidInput("the link must be a web address starting with http:// or https://")
    if any(ch.isspace() for ch in value):
        raise InvalidInput("the link must not contain spaces")
    return strip_tracking(value)


def _summary(raw: str, max_links: int, required: bool) -> tuple[str, str]:
    if _CONTROL.search(raw):
        raise InvalidInput("the summary contains a control character")
    source = raw.strip()
    if not source:
        if required:
            raise InvalidInput("the summary is required")
        return "", ""
    if not _BLOCK.search(source):  # plain text: blank lines make paragraphs
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", source) if p.strip()]
        source = "".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs)
    cleaned = sanitize_html(source, untrack=True).strip()
    text = html_to_text(cleaned)
    if len(text) > SUMMARY_LIMIT:
        raise InvalidInput(f"the summary is longer than {SUMMARY_LIMIT} characters")
    links = len(_ANCHOR.findall(cleaned)) + len(_BARE_URL.findall(plain_text(cleaned)))
    if links > max_links:
        raise InvalidInput(f"the summary may hold at most {max_links} link(s); it has {links}")
    return cleaned, text


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r} (use a name like Europe/Brussels)") from exc


def _moment(raw: str, tz: ZoneInfo, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"the {what} must be a date and time like 2026-02-10T15:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def check(submission: Submission, max_links: int) -> Checked:
    """The submission cleaned, or InvalidInput naming the first problem."""
    if submission.kind not in KINDS:
        raise InvalidInput("choose a news item or an event")
    news = submission.kind == "news"
    title = plain_text(clean_text(submission.title, "the title", 300))
    if not title:
        raise InvalidInput("the title is required")
    organisation = plain_text(clean_text(submission.organisation, "the organisation", 200))
    if not organisation:
        raise InvalidInput("the organisation is required")
    contact = normalise_address(submission.contact)
    link = _link(submission.link, required=news)
    summary_html, summary_text = _summary(submission.summary, max_links, required=news)
    starts = ends = None
    zone_name = place = ""
    if not news:
        if not submission.start.strip() or not submission.end.strip():
            raise InvalidInput("an event needs its start and its end")
        tz = _zone(submission.timezone or "UTC")
        zone_name = tz.key
        starts = _moment(submission.start, tz, "start")
        ends = _moment(submission.end, tz, "end")
        if ends <= starts:
            raise InvalidInput("the event must end after it starts")
        place = (
            ONLINE
            if submission.online
            else plain_text(clean_text(submission.place, "the place (or online)", 500))
        )
        if not place:
            raise InvalidInput("the place (or online) is required")
    return Checked(
        kind=submission.kind,
        title=title,
        organisation=organisation,
        contact=contact,
        link=link,
        summary_html=summary_html,
        summary_text=summary_text,
        starts_at=starts,
        ends_at=ends,
        timezone=zone_name,
        place=place,
    )
