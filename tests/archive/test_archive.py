"""The public archive over HTTP: what it shows, what it never shows, its feed, its caching."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from email.utils import format_datetime

import feedparser
from click.testing import Result
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.content import curation
from tests.archive_fixtures import add_stories, approve, send, story, switch
from tests.conftest import SMTPServer
from tests.consent_fixtures import cli_fixture  # noqa: F401  (the cli fixture)
from tests.delivery_fixtures import subscribe
from tests.helpers import parts

READERS = {
    "ada.lovelace@example.org": "Ada Lovelace",
    "grace.hopper@example.net": "Grace Hopper",
    "alan.turing@example.com": "",
}
TOKEN = re.compile(r"/(?:unsubscribe|preferences|r)/([A-Za-z0-9_.\-]{16,})")


def publish(runtime: Runtime, issue_id: int) -> None:
    """Mark an approved issue sent, as a finished campaign does (no SMTP needed here)."""
    with runtime.sessions.begin() as session:
        curation.start_sending(session, runtime.clock, issue_id)
        curation.mark_sent(session, runtime.clock, issue_id)


def test_the_web_copy_holds_nothing_of_any_reader_checked_against_the_mail_each_received(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer, client: TestClient
) -> None:
    make_list()
    for email, name in READERS.items():
        subscribe(runtime, email, name)
    add_stories(runtime, 1, 2)
    switch(runtime, count_clicks=True)  # their copies then carry redirect tokens as well
    issue_id = approve(runtime)
    smtp_server.received.clear()
    send(runtime, issue_id)

    page = client.get("/archive/cyber-news/1")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    personal: set[str] = set()
    for email, name in READERS.items():
        [received] = smtp_server.to(email)
        text, body = parts(received.message)
        assert email in received.data.decode("ascii")  # what we look for is really in the mail
        personal |= {email, email.split("@")[0], received.message["Message-ID"].strip("<>")}
        personal |= {name} if name else set()
        tokens = set(TOKEN.findall(text + body))
        assert len(tokens) >= 3  # unsubscribe, preferences, and the counted links
        personal |= tokens
    for value in personal:
        assert value not in page.text, value
    # ...and it is the issue they got: the same stories, linked straight to their targets
    assert "Hello," in page.text and "Hello Ada" not in page.text
    for n in (1, 2):
        assert story(n)["title"] in page.text
        assert f'href="{html.escape(story(n)["link"])}"' in page.text
    assert "News of the <strong>clusters</strong> this month" in page.text
    assert "Unsubscribe" not in page.text and "/r/" not in page.text
    assert 'href="/subscribe/cyber-news"' in page.text  # the web copy's footer, for everyone


def test_the_listing_and_the_atom_feed_show_the_sent_issues_newest_first(
    runtime: Runtime, make_list: Callable[..., str], clock: FrozenClock, client: TestClient
) -> None:
    make_list()
    add_stories(runtime, 1)
    first = approve(runtime, intro="The first issue.")
    publish(runtime, first)
    clock.advance(days=7)
    add_stories(runtime, 2)
    second = approve(runtime, intro="The second issue.")
    publish(runtime, second)
    clock.advance(days=7)
    add_stories(runtime, 3)
    approve(runtime, intro="Approved, not sent.")  # issue 3: not in the archive

    listing = client.get("/archive/cyber-news")
    feed = client.get("/archive/cyber-news/feed.xml")

    assert listing.status_code == 200
    numbers = [int(n) for n in re.findall(r'data-testid="issue-(\d+)"', listing.text)]
    assert numbers == [2, 1]
    assert "The second issue." in listing.text and "Approved, not sent." not in listing.text
    assert feed.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.feed.title == "Cyberwatching.eu Cluster News"
    base = "https://news.example.org/archive/cyber-news"
    assert [e.link for e in parsed.entries] == [f"{base}/2", f"{base}/1"]
    assert [e.id for e in parsed.entries] == [f"{base}/2", f"{base}/1"]
    assert "Cluster story 2" in parsed.entries[0].summary
    assert parsed.entries[1].updated_parsed[:3] == (2026, 1, 5)
    for missing in ("/archive/cyber-news/3", "/archive/cyber-news/9", "/archive/cyber-news/x1"):
        assert client.get(missing).status_code == 404, missing
    assert client.get("/archive/cyber-news?page=2").status_code == 404
    assert client.get("/archive/cyber-news?page=0").status_code == 422
    assert client.get("/archive/no-such-list").status_code == 404
    older = runtime.archive.listing("cyber-news", page=2, size=1)
    assert ([i.number for i in older.issues], older.pages, older.total) == ([1], 2, 2)


def test_d4_list_archive_follows_the_switch_withheld_issues_and_a_switched_off_archive_404(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    clock: FrozenClock,
    cli: Callable[..., Result],
) -> None:
    make_list()
    subscribe(runtime, "ada@example.org", "Ada")
    add_stories(runtime, 1)
    first = approve(runtime)
    smtp_server.received.clear()
    send(runtime, first)
    [mail] = smtp_server.to("ada@example.org")
    assert mail.message.get_all("List-Archive") == ["<https://news.example.org/archive/cyber-news>"]
    assert mail.message.get_all("List-Help") == ["<https://news.example.org/subscribe/cyber-news>"]
    assert mail.message.get_all("List-Post") == ["NO"]
    clock.advance(days=7)
    add_stories(runtime, 2)
    second = approve(runtime)
    publish(runtime, second)

    withheld = cli("issues", "withhold", str(first))
    assert withheld.exit_code == 0, withheld.output
    assert "withheld from the archive" in withheld.output
    assert client.get("/archive/cyber-news/1").status_code == 404
    assert client.get("/archive/cyber-news/2").status_code == 200
    assert 'data-testid="issue-1"' not in client.get("/archive/cyber-news").text
    assert "/archive/cyber-news/1<" not in client.get("/archive/cyber-news/feed.xml").text
    assert cli("issues", "withhold", str(first), "--undo").exit_code == 0
    assert client.get("/archive/cyber-news/1").status_code == 200

    switched = cli("lists", "edit", "cyber-news", "--archive", "off")
    assert switched.exit_code == 0, switched.output
    assert "public archive off" in switched.output
    for path in ("", "/1", "/2", "/feed.xml"):
        answer = client.get(f"/archive/cyber-news{path}")
        assert answer.status_code == 404, path
        assert "Cluster story" not in answer.text
    clock.advance(days=7)
    add_stories(runtime, 3)
    third = approve(runtime)  # approved while the archive is off: no List-Archive
    smtp_server.received.clear()
    send(runtime, third)
    [mail] = smtp_server.to("ada@example.org")
    assert mail.message.get_all("List-Archive") is None
    assert mail.message.get_all("List-Help") == ["<https://news.example.org/subscribe/cyber-news>"]

    assert cli("lists", "edit", "cyber-news").exit_code == 2  # nothing to switch
    assert cli("lists", "edit", "cyber-news", "--archive", "maybe").exit_code == 2
    assert cli("lists", "edit", "no-such-list", "--archive", "on").exit_code == 2
    assert cli("issues", "withhold", "999").exit_code == 2


def test_archive_pages_are_cached_with_etag_and_last_modified_and_load_nothing_from_elsewhere(
    runtime: Runtime, make_list: Callable[..., str], clock: FrozenClock, client: TestClient
) -> None:
    make_list()
    add_stories(runtime, 1)
    issue_id = approve(runtime)
    publish(runtime, issue_id)
    sent_at = clock.now()
    clock.advance(hours=1)

    for path in ("/archive/cyber-news", "/archive/cyber-news/1", "/archive/cyber-news/feed.xml"):
        first = client.get(path)
        assert first.status_code == 200, path
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert modified == format_datetime(sent_at, usegmt=True)
        assert "set-cookie" not in first.headers
        assert "public" in first.headers["cache-control"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b""), path
        assert again.headers["etag"] == etag
        assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
        stale = client.get(path, headers={"If-None-Match": '"something-else"'})
        assert stale.status_code == 200
    page = client.get("/archive/cyber-news/1")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert not re.search(r"<(?:img|script|iframe|link)\b", page.text)
    assert not re.search(r"\bsrc=|@import|url\(", page.text)

    listing = client.get("/archive/cyber-news")
    clock.advance(hours=1)
    with runtime.sessions.begin() as session:
        from mailer.archive.service import withhold

        withhold(session, runtime.clock, issue_id)
    changed = client.get(
        "/archive/cyber-news",
        headers={"If-None-Match": listing.headers["etag"]},
    )
    assert changed.status_code == 200 and 'data-testid="issue-1"' not in changed.text
    assert changed.headers["last-modified"] == format_datetime(clock.now(), usegmt=True)
