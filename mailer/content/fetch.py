"""Fetching feeds and calendars over HTTP (httpx) or from local files: conditional GET,
redirects, 429, a size cap.

`fetch` never raises: every outcome, including a failure, comes back as a
`Fetched` with the HTTP status and, for a failure, what went wrong in words.
A document over the size cap is refused whole, never cut: a cut feed or .ics is
a corrupt one. Politeness is the caller's concern only through `HostLimits` (a
per-host cap shared by the fetches of one run) and the `retry_at` this module
reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx

from consent.addresses import InvalidInput
from consent.clock import utc

PERMANENT = (301, 308)
RETRY_STATUSES = (429, 503)
MAX_RETRY_AFTER = timedelta(days=2)


def feed_user_agent(base_url: str = "") -> str:
    """The User-Agent of every feed and calendar fetch; with the site's URL in it, a feed's
    operator can tell who reads them."""
    site = f"; +{base_url}" if base_url else ""
    return f"mailer/0.1 (newsletter feed reader{site})"


@dataclass(frozen=True)
class FetchPolicy:
    """How feeds are read; built at the edge (the User-Agent names the deployment)."""

    user_agent: str = feed_user_agent()
    timeout: float = 20.0
    per_host: int = 2
    concurrency: int = 8
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    # A 429/503 without a usable Retry-After waits this long.
    default_retry: timedelta = timedelta(minutes=30)
    # Items older than this when a feed first brings them are kept but never gathered.
    new_item_window: timedelta = timedelta(days=14)
    summary_length: int = 400


@dataclass(frozen=True)
class Fetched:
    url: str  # the URL asked for
    final_url: str  # where the body came from, after redirects (the parsing base)
    status: int | None  # HTTP status; 200 for a file; None when no answer came
    body: bytes | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # target of a permanent redirect, to remember
    retry_at: datetime | None = None
    error: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class HostLimits:
    """At most `per_host` requests in flight to any one host (and `total` overall)."""

    def __init__(self, per_host: int, total: int) -> None:
        self.per_host = per_host
        self.total = asyncio.Semaphore(total)
        self.hosts: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        semaphore = self.hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with self.total, semaphore:
            yield


def is_file_url(url: str) -> bool:
    return url.startswith("file:")


def file_path(url: str) -> Path:
    return Path(url2pathname(urlsplit(url).path))


def normalise_location(raw: str, what: str) -> str:
    """An http(s) URL as given, or a file:// URL for a file path or file: URL that exists;
    `what` ("feed", "calendar") names the thing in the error."""
    value = (raw or "").strip()
    if not value:
        raise InvalidInput(f"a {what} URL or file path is required")
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        if not urlsplit(value).hostname:
            raise InvalidInput(f"not a valid URL: {value!r}")
        return value
    if scheme == "file":
        path = file_path(value)
    elif scheme and len(scheme) > 1:
        raise InvalidInput(f"a {what} is read over http(s) or from a file, not {scheme}:")
    else:
        path = Path(value).expanduser()
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    return path.resolve().as_uri()


def too_large(limit: int, what: str = "the response") -> str:
    return f"{what} is larger than {limit} bytes (the limit): refused, not cut"


def retry_at(value: str | None, now: datetime, default: timedelta) -> datetime:
    """When to ask again, from a Retry-After of seconds or an HTTP date (capped)."""
    wait = default
    if value:
        value = value.strip()
        if value.isdigit():
            wait = timedelta(seconds=int(value))
        else:
            try:
                wait = utc(parsedate_to_datetime(value)) - now
            except (TypeError, ValueError, IndexError):
                wait = default
    return now + min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


def _permanent_target(history: list[httpx.Response]) -> str | None:
    """Where a chain of permanent redirects from the start of `history` ends."""
    target = None
    for response in history:
        if response.status_code not in PERMANENT or "location" not in response.headers:
            break
        target = urljoin(str(response.url), response.headers["location"])
    return target


def _describe(exc: Exception, url: str, policy: FetchPolicy) -> str:
    host = urlsplit(url).hostname or url
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {host} within {policy.timeout:g} s"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"more than {policy.max_redirects} redirects"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {host}: {exc or 'connection refused'}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"not a URL this service can fetch: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _conditional(etag: str | None, last_modified: str | None) -> Iterator[tuple[str, str]]:
    if etag:
        yield "If-None-Match", etag
    if last_modified:
        yield "If-Modified-Since", last_modified


async def _read_file(url: str, policy: FetchPolicy) -> Fetched:
    path = file_path(url)
    try:
        size = path.stat().st_size
        if size > policy.max_bytes:
            return Fetched(url, url, None, error=too_large(policy.max_bytes, "the file"))
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        return Fetched(url, url, None, error=f"no such file: {path}")
    except OSError as exc:
        return Fetched(url, url, None, error=f"cannot read {path}: {exc.strerror or exc}")
    return Fetched(url, url, 200, body=body)


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    now: datetime,
    policy: FetchPolicy,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: HostLimits | None = None,
    accept: str | None = None,
) -> Fetched:
    """One conditional GET of `url` (or a read of a file:// URL); never raises.

    `accept` replaces the client's Accept header (feed types) for other documents."""
    if is_file_url(url):
        return await _read_file(url, policy)
    limits = limits or HostLimits(policy.per_host, policy.concurrency)
    headers = dict(_conditional(etag, last_modified))
    if accept:
        headers["Accept"] = accept
    try:
        async with limits.slot(url), client.stream("GET", url, headers=headers) as response:
            moved = _permanent_target(response.history)
            final = str(response.url)
            if response.status_code == 304:
                return Fetched(
                    url, final, 304, etag=etag, last_modified=last_modified, moved_to=moved
                )
            if response.status_code in RETRY_STATUSES:
                when = retry_at(response.headers.get("retry-after"), now, policy.default_retry)
                return Fetched(
                    url,
                    final,
                    response.status_code,
                    moved_to=moved,
                    retry_at=when,
                    error=f"HTTP {response.status_code} {response.reason_phrase}: the server"
                    f" asks to wait until {when:%Y-%m-%d %H:%M} UTC",
                )
            if response.status_code >= 400:
                return Fetched(
                    url,
                    final,
                    response.status_code,
                    moved_to=moved,
                    error=f"HTTP {response.status_code} {response.reason_phrase}",
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    return Fetched(
                        url,
                        final,
                        response.status_code,
                        moved_to=moved,
                        error=too_large(policy.max_bytes),
                    )
                chunks.append(chunk)
            return Fetched(
                url,
                final,
                response.status_code,
                body=b"".join(chunks),
                content_type=response.headers.get("content-type"),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                moved_to=moved,
            )
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        return Fetched(url, url, None, error=_describe(exc, url, policy))


def client_for(policy: FetchPolicy) -> httpx.AsyncClient:
    """The HTTP client one fetch run shares: timeout, redirects, a clear User-Agent."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout),
        follow_redirects=True,
        max_redirects=policy.max_redirects,
        headers={"User-Agent": policy.user_agent, "Accept": _ACCEPT},
        limits=httpx.Limits(max_connections=policy.concurrency),
    )


_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9,"
    " application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
