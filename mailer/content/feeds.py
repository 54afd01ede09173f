"""News feeds of a list: add and list them, fetch them all, store deduplicated items.

Fetching (`mailer.content.fetch`) and parsing (`mailer.content.parse`) are apart; this
module joins them to the database. Items are deduplicated across the feeds of a
list by GUID, then canonical link, then content hash; a GUID that is not globally
unique (no scheme or tag, e.g. "102") only matches within its own feed. A feed
that fails keeps its items and records the failure; one feed never stops another.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput, clean_text
from consent.clock import Clock
from consent.lists import get_list
from consent.models import MailingList
from mailer.content.fetch import (
    Fetched,
    FetchPolicy,
    HostLimits,
    client_for,
    fetch,
    is_file_url,
    normalise_location,
)
from mailer.content.models import Feed, FeedItem
from mailer.content.parse import ParsedFeed, ParsedItem, parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedReport:
    """What one fetch of one feed did, for the summary a person reads."""

    feed_id: int
    list_slug: str
    label: str
    url: str
    outcome: str  # "updated", "not-modified", "skipped", "failed"
    new: int = 0
    changed: int = 0
    status: int | None = None
    detail: str = ""


def normalise_feed_url(raw: str) -> str:
    """An http(s) URL as given, or a file:// URL for a file path or file: URL that exists."""
    return normalise_location(raw, "feed")


def add_feed(
    session: Session,
    clock: Clock,
    list_slug: str,
    url: str,
    name: str | None = None,
    section: str | None = None,
) -> Feed:
    mailing_list = get_list(session, list_slug)
    url = normalise_feed_url(url)
    if len(url) > 2000:
        raise InvalidInput("the feed URL is longer than 2000 characters")
    exists = select(Feed.id).where(Feed.list_id == mailing_list.id, Feed.url == url)
    if session.scalar(exists) is not None:
        raise InvalidInput(f"{url} is already a feed of {list_slug}")
    feed = Feed(
        list_id=mailing_list.id,
        url=url,
        name=clean_text(name, "the name", 200) if name else "",
        section=clean_text(section, "the section", 100) if section else "",
        added_at=clock.now(),
        failures=0,
        last_error="",
    )
    session.add(feed)
    session.flush()
    return feed


def feeds_of(session: Session, list_slug: str | None = None) -> list[Feed]:
    query = select(Feed).join(MailingList).order_by(MailingList.slug, Feed.id)
    if list_slug is not None:
        query = query.where(Feed.list_id == get_list(session, list_slug).id)
    return list(session.scalars(query))


def _key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def guid_key(guid: str, feed_id: int) -> str:
    """GUIDs with a scheme (URLs, URNs, tag:) match across feeds; bare ones per feed."""
    global_id = ":" in guid
    return _key(guid if global_id else f"{feed_id}\n{guid}")


def _match(session: Session, feed: Feed, item: ParsedItem) -> FeedItem | None:
    in_list = select(FeedItem).where(FeedItem.list_id == feed.list_id)
    if item.guid:
        found = session.scalar(in_list.where(FeedItem.guid_key == guid_key(item.guid, feed.id)))
        if found is not None:
            return found
    if item.canonical_link:
        found = session.scalar(in_list.where(FeedItem.link_key == _key(item.canonical_link)))
        if found is not None:
            return found
    return session.scalar(in_list.where(FeedItem.content_hash == item.content_hash).limit(1))


def store_items(
    session: Session, feed: Feed, parsed: ParsedFeed, now: datetime, policy: FetchPolicy
) -> tuple[int, int]:
    """Insert new items and update changed ones; returns (new, changed).

    Items older than the policy's window when first seen are stored as backlog
    (kept for deduplication, never gathered), and so are undated items of a feed's
    first successful fetch: a new feed never floods the next issue with its archive.
    """
    first_fetch = feed.last_success_at is None
    horizon = now - policy.new_item_window
    new = changed = 0
    for item in parsed.items:
        found = _match(session, feed, item)
        if found is None:
            backlog = item.published < horizon if item.published else first_fetch
            session.add(
                FeedItem(
                    list_id=feed.list_id,
                    feed_id=feed.id,
                    guid=item.guid,
                    guid_key=guid_key(item.guid, feed.id) if item.guid else None,
                    link=item.link,
                    link_key=_key(item.canonical_link) if item.canonical_link else None,
                    content_hash=item.content_hash,
                    title=item.title,
                    summary_html=item.summary_html,
                    summary_text=item.summary_text,
                    author=item.author,
                    published_at=item.published,
                    first_seen_at=now,
                    updated_at=now,
                    backlog=backlog,
                )
            )
            session.flush()
            new += 0 if backlog else 1
        elif found.feed_id == feed.id and (
            found.content_hash != item.content_hash or (item.link and found.link != item.link)
        ):
            # The same story from its own feed, edited (or its link cleaned of trackers):
            # update it (another feed's wording of a shared story never overwrites the
            # first one's).
            found.title, found.link = item.title, item.link or found.link
            found.summary_html, found.summary_text = item.summary_html, item.summary_text
            found.content_hash, found.author = item.content_hash, item.author
            found.published_at = item.published or found.published_at
            found.updated_at = now
            changed += 1
    return new, changed


def _record(
    session: Session, feed: Feed, got: Fetched, now: datetime, policy: FetchPolicy
) -> FeedReport:
    """Apply one fetch result to the feed (health, validators, URL) and its items."""
    feed.read(now, got.status)
    if got.moved_to and got.moved_to != feed.url:
        feed.url = got.moved_to

    def report(outcome: str, new: int = 0, changed: int = 0, detail: str = "") -> FeedReport:
        return FeedReport(
            feed.id, feed.list.slug, feed.label, feed.url, outcome, new, changed, got.status, detail
        )

    parsed = None
    if got.error is None and got.body is not None:
        parsed = parse(got.body, got.final_url, policy.summary_length, got.content_type)
    if got.error is not None or (parsed is not None and not parsed.ok):
        feed.failed(got.error or "; ".join(parsed.problems if parsed else ()), got.retry_at)
        return report("failed", detail=feed.last_error)
    if got.not_modified or parsed is None:
        feed.succeeded(now, None)
        return report("not-modified")
    if parsed.title:
        feed.title = parsed.title
    new, changed = store_items(session, feed, parsed, now, policy)  # reads last_success_at
    feed.succeeded(now, (got.etag, got.last_modified))
    return report("updated", new, changed, "; ".join(parsed.problems))


async def fetch_feeds(
    sessions: sessionmaker[Session],
    clock: Clock,
    list_slug: str | None = None,
    policy: FetchPolicy | None = None,
    on_report: Callable[[FeedReport], None] | None = None,
    client: httpx.AsyncClient | None = None,
) -> list[FeedReport]:
    """Fetch every feed (of one list, or all), concurrently; store what is new.

    Each feed's outcome is written in its own transaction as soon as it arrives,
    so one failing or slow feed neither loses nor delays the others' items.
    """
    policy = policy or FetchPolicy()
    now = clock.now()
    with sessions() as session:
        due, reports = [], []
        for feed in feeds_of(session, list_slug):
            if feed.retry_at is not None and feed.retry_at > now and not is_file_url(feed.url):
                reports.append(
                    FeedReport(
                        feed.id,
                        feed.list.slug,
                        feed.label,
                        feed.url,
                        "skipped",
                        status=feed.last_status,
                        detail=f"the server asked to wait until {feed.retry_at:%Y-%m-%d %H:%M} UTC",
                    )
                )
            else:
                due.append((feed.id, feed.url, feed.etag, feed.last_modified))
    for report in reports:
        if on_report:
            on_report(report)
    limits = HostLimits(policy.per_host, policy.concurrency)
    own_client = client is None
    http = client or client_for(policy)

    async def one(feed_id: int, url: str, etag: str | None, modified: str | None) -> None:
        got = await fetch(http, url, now, policy, etag=etag, last_modified=modified, limits=limits)
        try:
            with sessions.begin() as session:
                feed = session.get(Feed, feed_id)
                if feed is None:  # removed meanwhile
                    return
                report = _record(session, feed, got, now, policy)
        except Exception as exc:  # one feed's surprise must not stop the others
            log.exception("storing feed %s failed", url)
            report = FeedReport(
                feed_id,
                "",
                url,
                url,
                "failed",
                status=got.status,
                detail=f"could not store the items: {exc}",
            )
        reports.append(report)
        if on_report:
            on_report(report)

    try:
        await asyncio.gather(*(one(*args) for args in due))
    finally:
        if own_client:
            await http.aclose()
    return reports
