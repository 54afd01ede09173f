"""Fixtures and helpers for the content tests: a real feed server on loopback, sample issues."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mailer.content.issue_content import EventEntry, Highlight, IssueContent, NewsEntry, Section
from tests.helpers import DATA

FEEDS = DATA / "feeds"
ICS = DATA / "ics"

Route = Callable[["Request"], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class FeedServer:
    """An HTTP server on 127.0.0.1 (real sockets) answering from `routes`, recording requests."""

    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve_file(
        self, path: str, file: Path, etag: str | None = None, last_modified: str | None = None
    ) -> None:
        """Serve `file` at `path` with validators, answering 304 to a matching conditional GET."""
        body = file.read_bytes()

        def route(request: Request) -> tuple[int, dict[str, str], bytes]:
            headers = {"Content-Type": "application/rss+xml"}
            if etag:
                headers["ETag"] = etag
            if last_modified:
                headers["Last-Modified"] = last_modified
            if etag and request.headers.get("if-none-match") == etag:
                return 304, headers, b""
            if last_modified and request.headers.get("if-modified-since") == last_modified:
                return 304, headers, b""
            return 200, headers, body

        self.routes[path] = route

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


def serve_feeds() -> Iterator[FeedServer]:
    """Run a FeedServer until the generator is closed; a fixture yields from it."""
    state = FeedServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()})
            state.requests.append(request)
            route = state.routes.get(self.path)
            status, headers, body = route(request) if route else (404, {}, b"not here")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            if isinstance(sys.exc_info()[1], ConnectionError):
                return  # a client that stopped reading on purpose (a size cap)
            super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def news(ref: int, **changes: str) -> NewsEntry:
    values = {
        "title": f"Cluster story {ref}",
        "link": f"https://clusters.example.org/news/{ref}?a=1&b=2",
        "summary_html": f"<p>What cluster {ref} did, in <strong>a few</strong> words.</p>",
        "summary_text": f"What cluster {ref} did, in a few words.",
        "source": "Cluster Watch",
        "published": "4 January 2026",
        "note": "",
    }
    values.update(changes)
    return NewsEntry(ref=ref, **values)


def event(ref: int, **changes: str) -> EventEntry:
    values = {
        "title": f"Webinar {ref}",
        "when": "Tue 13 January 2026, 15:00–16:00 CET",
        "starts_at": "2026-01-13T14:00:00+00:00",
        "own_time": "",
        "location": "Online",
        "url": f"https://webinars.example.org/{ref}",
        "description": "A webinar for cluster managers.",
        "note": "",
    }
    values.update(changes)
    return EventEntry(ref=ref, **values)


def sample_content(entries: int = 12, events: int = 3) -> IssueContent:
    """An issue's content without a database: a highlight, two sections, some events."""
    items = [news(i) for i in range(1, entries + 1)]
    half = max(1, len(items) // 2)
    return IssueContent(
        issue_id=7,
        number=3,
        list_slug="cyber-news",
        list_name="Cyberwatching.eu Cluster News",
        date="2026-01-05",
        date_label="5 January 2026",
        subject="Cluster News #3 – January 2026",
        preheader="The cluster of the month and the next webinars",
        intro_html="<p>Welcome to <strong>issue 3</strong>.</p>",
        intro_text="Welcome to **issue 3**.",
        highlight=Highlight("Cluster of the month", news=items[0]),
        sections=(
            Section("Cluster news", tuple(items[1:half])),
            Section("Policy", tuple(items[half:])),
        ),
        events=tuple(event(100 + i) for i in range(events)),
        controller_name="Cyberwatching.eu consortium",
        controller_contact="dpo@example.org",
        controller_address="Example Street 1, 1000 Brussels",
        purpose="News about European cybersecurity clusters",
        cadence="monthly",
        timezone="Europe/Madrid",
    )
