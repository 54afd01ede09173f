"""Feed bytes to items (feedparser): RSS 0.9x/1.0/2.0 and Atom; never raises, reports.

Parsing is pure: it takes the fetched bytes and the URL they came from, and gives
back sanitised, truncated items with the keys deduplication uses (GUID, canonical
link, content hash). Problems (bad encoding, broken XML, not a feed at all) are
listed in `ParsedFeed.problems` instead of raised.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from mailer.content.sanitize import (
    html_to_text,
    is_tracking,
    plain_text,
    sanitize_html,
    strip_tracking,
    truncate_html,
)

SUMMARY_LENGTH = 400
MAX_ITEMS = 500
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedItem:
    guid: str | None
    title: str
    link: str
    canonical_link: str
    summary_html: str
    summary_text: str
    author: str
    published: datetime | None
    content_hash: str


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str
    version: str  # feedparser's name for the format, e.g. "rss20", "atom10"; "" if none
    items: tuple[ParsedItem, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """A feed was recognised (possibly with problems worth reporting)."""
        return bool(self.version or self.items)


def canonical_link(url: str) -> str:
    """The link without tracking parameters or fragment, scheme and host lower-cased."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if port and (parts.scheme.lower(), port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking(name)
    ]
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", urlencode(sorted(query)), ""))


def content_hash(title: str, text: str) -> str:
    normal = _SPACE.sub(" ", f"{title}\n{text}".lower()).strip()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _is_web(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _link(entry: Any, base: str) -> str:
    raw = entry.get("link") or ""
    if not raw:
        for link in entry.get("links") or ():
            if link.get("rel", "alternate") == "alternate" and link.get("href"):
                raw = link["href"]
                break
    if not raw:
        return ""
    absolute = urljoin(base, str(raw).strip())
    return strip_tracking(absolute) if _is_web(absolute) else ""


def _body(entry: Any) -> str:
    summary = str(entry.get("summary") or "")
    for content in entry.get("content") or ():
        value = str(content.get("value") or "")
        if len(value) > len(summary):
            summary = value
    return summary


def _item(entry: Any, feed_url: str, site: str, summary_length: int) -> ParsedItem | None:
    """One entry; relative links resolve against the feed's web URL, else the item's own
    link, else the channel's site (a feed read from a file has no web URL of its own)."""
    link = _link(entry, feed_url or site)
    base = feed_url or link or site
    summary_html = truncate_html(sanitize_html(_body(entry), base, untrack=True), summary_length)
    summary_text = html_to_text(summary_html)
    title = plain_text(str(entry.get("title") or ""))[:500]
    if not title:
        title = summary_text[:80].rsplit(" ", 1)[0] + "…" if summary_text else ""
    if not title and not link:
        return None
    guid = str(entry.get("id") or "").strip()[:1000] or None
    return ParsedItem(
        guid=guid,
        title=title or link,
        link=link,
        canonical_link=canonical_link(link) if link else "",
        summary_html=summary_html,
        summary_text=summary_text,
        author=plain_text(str(entry.get("author") or ""))[:300],
        published=_when(entry),
        content_hash=content_hash(title, summary_text),
    )


def parse(
    data: bytes,
    base_url: str = "",
    summary_length: int = SUMMARY_LENGTH,
    content_type: str | None = None,
) -> ParsedFeed:
    """Items of a feed document; `base_url` (the fetched URL) resolves relative links."""
    problems: list[str] = []
    headers = {"content-type": content_type or "application/xml"}
    # feedparser resolves relative links against this; a file:// URL would turn them
    # into file links that the sanitiser then drops, so only a web URL is given.
    feed_url = base_url if _is_web(base_url) else ""
    if feed_url:
        headers["content-location"] = feed_url
    try:
        result = feedparser.parse(
            bytes(data),
            response_headers=headers,
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    except Exception as exc:  # noqa: BLE001  (feedparser can trip on pathological input)
        return ParsedFeed("", "", "", (), (f"could not read the document: {exc}",))
    if result.get("bozo"):
        problems.append(_describe(result.get("bozo_exception")))
    feed = result.get("feed") or {}
    site = str(feed.get("link") or "")
    site = site if _is_web(site) else ""
    items: list[ParsedItem] = []
    for index, entry in enumerate(result.get("entries") or ()):
        if index >= MAX_ITEMS:
            problems.append(f"only the first {MAX_ITEMS} items were read")
            break
        try:
            item = _item(entry, feed_url, site, summary_length)
        except Exception as exc:  # noqa: BLE001  (one odd entry never loses the others)
            problems.append(f"item {index + 1} skipped: {exc}")
            continue
        if item is not None:
            items.append(item)
    version = str(result.get("version") or "")
    if not version and not items:
        problems.append("this is not an RSS or Atom feed")
    return ParsedFeed(
        title=plain_text(str(feed.get("title") or ""))[:300],
        link=str(feed.get("link") or ""),
        version=version,
        items=tuple(items),
        problems=tuple(dict.fromkeys(p for p in problems if p)),
    )


def _describe(exc: object) -> str:
    if exc is None:
        return ""
    name = type(exc).__name__
    if "Encoding" in name:
        return f"character encoding problem: {exc}"
    return f"malformed feed ({name}): {exc}"
