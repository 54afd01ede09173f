"""Fetching over real sockets (conditional GET, redirects, 429), storing and deduplicating."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.content.feeds import FeedReport, add_feed, feeds_of, fetch_feeds
from mailer.content.fetch import FetchPolicy
from mailer.content.models import Feed, FeedItem
from tests.content_fixtures import FEEDS, FeedServer, serve_feeds

POLICY = FetchPolicy(user_agent="mailer-tests/1 (+https://news.example.org)", timeout=5)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    yield from serve_feeds()


def fetch(runtime: Runtime, list_slug: str | None = "cyber-news") -> dict[str, FeedReport]:
    reports = asyncio.run(fetch_feeds(runtime.sessions, runtime.clock, list_slug, POLICY))
    return {r.url: r for r in reports}


def add(runtime: Runtime, url: str, **kwargs: str) -> int:
    with runtime.sessions.begin() as session:
        return add_feed(session, runtime.clock, "cyber-news", url, **kwargs).id


def items(runtime: Runtime) -> list[FeedItem]:
    with runtime.sessions() as session:
        return list(session.scalars(select(FeedItem).order_by(FeedItem.id)))


def feed(runtime: Runtime, feed_id: int) -> Feed:
    with runtime.sessions() as session:
        found = session.get(Feed, feed_id)
        assert found is not None
        return found


def test_conditional_get_and_304(
    runtime: Runtime, make_list: Callable[..., str], feed_server: FeedServer
) -> None:
    make_list()
    feed_server.serve_file(
        "/rss.xml", FEEDS / "rss20.xml", etag='"v1"', last_modified="Sun, 04 Jan 2026 10:00:00 GMT"
    )
    feed_id = add(runtime, feed_server.url("/rss.xml"))
    first = fetch(runtime)[feed_server.url("/rss.xml")]
    assert (first.outcome, first.new, first.status) == ("updated", 2, 200)
    stored = feed(runtime, feed_id)
    assert stored.etag == '"v1"' and stored.last_modified == "Sun, 04 Jan 2026 10:00:00 GMT"
    assert stored.title == "Cluster Watch"

    second = fetch(runtime)[feed_server.url("/rss.xml")]
    assert (second.outcome, second.status, second.new) == ("not-modified", 304, 0)
    request = feed_server.to("/rss.xml")[-1]
    assert request.headers["if-none-match"] == '"v1"'
    assert request.headers["if-modified-since"] == "Sun, 04 Jan 2026 10:00:00 GMT"
    assert request.headers["user-agent"].startswith("mailer-tests/1")
    assert len(items(runtime)) == 2
    assert feed(runtime, feed_id).failures == 0


def test_the_command_line_and_the_service_fetch_with_one_user_agent(
    runtime: Runtime,
    make_list: Callable[..., str],
    feed_server: FeedServer,
    settings_env: dict[str, str],
) -> None:
    """`feeds fetch`, `events import` and the service's own fetching once each named
    themselves differently; a feed's operator now sees one reader, with the site's URL."""
    from mailer.service.housekeeping import fetch_feeds as service_fetch

    make_list()
    feed_server.serve_file("/rss.xml", FEEDS / "rss20.xml")
    add(runtime, feed_server.url("/rss.xml"))
    fetched = CliRunner().invoke(app, ["feeds", "fetch", "--all"], env=settings_env)
    assert fetched.exit_code == 0, fetched.output
    assert asyncio.run(service_fetch(runtime.sessions, runtime.clock, runtime.fetch_policy())) == 0
    agents = [r.headers["user-agent"] for r in feed_server.to("/rss.xml")]
    assert agents == ["mailer/0.1 (newsletter feed reader; +https://news.example.org)"] * 2


def test_permanent_redirect_is_remembered(
    runtime: Runtime, make_list: Callable[..., str], feed_server: FeedServer
) -> None:
    make_list()
    feed_server.serve_file("/new.xml", FEEDS / "rss20.xml")
    feed_server.routes["/old.xml"] = lambda r: (301, {"Location": "/new.xml"}, b"")
    feed_server.routes["/temp.xml"] = lambda r: (302, {"Location": "/new.xml"}, b"")
    moved = add(runtime, feed_server.url("/old.xml"))
    temporary = add(runtime, feed_server.url("/temp.xml"), name="Temporary")
    reports = fetch(runtime)
    assert reports[feed_server.url("/new.xml")].outcome == "updated"
    assert feed(runtime, moved).url == feed_server.url("/new.xml")
    assert feed(runtime, temporary).url == feed_server.url("/temp.xml")  # 302: not remembered
    fetch(runtime)
    assert len(feed_server.to("/old.xml")) == 1  # the old URL is asked no more


def test_429_retry_after_is_honoured(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str], feed_server: FeedServer
) -> None:
    make_list()
    feed_server.routes["/busy.xml"] = lambda r: (429, {"Retry-After": "120"}, b"slow down")
    feed_server.serve_file("/ok.xml", FEEDS / "rss20.xml")
    busy = add(runtime, feed_server.url("/busy.xml"))
    add(runtime, feed_server.url("/ok.xml"))
    first = fetch(runtime)
    assert first[feed_server.url("/busy.xml")].outcome == "failed"
    assert first[feed_server.url("/ok.xml")].outcome == "updated"  # the other is not held up
    health = feed(runtime, busy)
    assert health.last_status == 429 and health.failures == 1
    assert health.retry_at == clock.now() + timedelta(seconds=120)
    assert "429" in health.last_error and "wait until" in health.last_error

    clock.advance(seconds=60)
    assert fetch(runtime)[feed_server.url("/busy.xml")].outcome == "skipped"
    assert len(feed_server.to("/busy.xml")) == 1

    clock.advance(seconds=61)
    feed_server.serve_file("/busy.xml", FEEDS / "rss10.rdf")
    assert fetch(runtime)[feed_server.url("/busy.xml")].outcome == "updated"
    assert feed(runtime, busy).failures == 0 and feed(runtime, busy).retry_at is None


def test_one_broken_feed_never_stops_the_others(
    runtime: Runtime, make_list: Callable[..., str], feed_server: FeedServer, tmp_path: Path
) -> None:
    make_list()
    feed_server.routes["/gone.xml"] = lambda r: (404, {}, b"no")
    feed_server.routes["/html"] = lambda r: (200, {"Content-Type": "text/html"}, b"<html>hi</html>")
    feed_server.serve_file("/ok.xml", FEEDS / "atom.xml")
    local = tmp_path / "local.xml"
    local.write_bytes((FEEDS / "rss10.rdf").read_bytes())
    gone, html = add(runtime, feed_server.url("/gone.xml")), add(runtime, feed_server.url("/html"))
    add(runtime, feed_server.url("/ok.xml"))
    add(runtime, str(local))
    add(runtime, "http://127.0.0.1:9/refused.xml")
    reports = fetch(runtime)
    assert reports[feed_server.url("/gone.xml")].detail == "HTTP 404 Not Found"
    assert "not an RSS or Atom feed" in reports[feed_server.url("/html")].detail
    assert "cannot connect" in reports["http://127.0.0.1:9/refused.xml"].detail
    assert reports[feed_server.url("/ok.xml")].new == 2
    assert reports[local.resolve().as_uri()].new == 1
    assert feed(runtime, gone).failures == 1 and feed(runtime, html).last_error
    # A feed that fails later keeps its items.
    feed_server.routes["/ok.xml"] = lambda r: (500, {}, b"oops")
    before = len(items(runtime))
    assert fetch(runtime)[feed_server.url("/ok.xml")].outcome == "failed"
    assert len(items(runtime)) == before


def test_dedupe_across_feeds_with_tracking_parameters(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    add(runtime, str(FEEDS / "dedupe_a.xml"))
    add(runtime, str(FEEDS / "dedupe_b.xml"))
    fetch(runtime)
    titles = sorted(i.title for i in items(runtime))
    assert len(titles) == 2, titles  # the ENISA story once, plus the story only B has
    assert "A story only feed B has" in titles
    fetch(runtime)
    assert len(items(runtime)) == 2  # and nothing new the second time


def test_stored_items_have_absolute_links_without_trackers(
    runtime: Runtime, make_list: Callable[..., str], tmp_path: Path
) -> None:
    """The demo's case: a feed read from a file, with relative and tracking links."""
    make_list()
    add(runtime, str(FEEDS / "links.xml"))
    fetch(runtime)
    first = next(i for i in items(runtime) if i.guid == "links-1")
    assert first.link == "https://clusters.example.org/news/links?id=7#top"
    assert 'href="https://clusters.example.org/relative/path"' in first.summary_html
    assert "utm_" not in first.summary_html + first.summary_text + first.link

    # A row stored with its tracking link (before this rule) is cleaned at the next fetch.
    with runtime.sessions.begin() as session:
        stored = session.get(FeedItem, first.id)
        assert stored is not None
        stored.link = "https://clusters.example.org/news/links?utm_source=rss&id=7#top"
    report = next(iter(fetch(runtime).values()))
    assert (report.new, report.changed) == (0, 1)
    assert next(i for i in items(runtime) if i.id == first.id).link == first.link


def test_changed_content_updates_the_item(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str], tmp_path: Path
) -> None:
    make_list()
    path = tmp_path / "feed.xml"
    original = (FEEDS / "rss20.xml").read_text()
    path.write_text(original)
    add(runtime, str(path))
    fetch(runtime)
    clock.advance(hours=1)
    path.write_text(original.replace("ten-point checklist", "twelve-point checklist"))
    report = next(iter(fetch(runtime).values()))
    assert (report.new, report.changed) == (0, 1)
    changed = [i for i in items(runtime) if "twelve-point" in i.summary_text]
    assert len(items(runtime)) == 2 and len(changed) == 1
    assert changed[0].updated_at == clock.now() and changed[0].first_seen_at < clock.now()


def test_a_new_feed_does_not_flood_with_its_archive(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str]
) -> None:
    make_list()
    clock.advance(days=30)  # every dated item is now older than the 14-day window
    add(runtime, str(FEEDS / "rss20.xml"))
    add(runtime, str(FEEDS / "broken.xml"))  # undated items of a first fetch: backlog too
    assert sum(r.new for r in fetch(runtime).values()) == 0
    assert items(runtime) and all(i.backlog for i in items(runtime))


def test_cli_feeds_add_list_fetch(
    settings_env: dict[str, str], runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    cli = CliRunner()
    added = cli.invoke(
        app,
        [
            "feeds",
            "add",
            str(FEEDS / "rss20.xml"),
            "--list",
            "cyber-news",
            "--name",
            "Clusters",
            "--section",
            "Cluster news",
        ],
        env=settings_env,
    )
    assert added.exit_code == 0, added.output
    assert (
        cli.invoke(
            app, ["feeds", "add", "/no/such/file.xml", "--list", "cyber-news"], env=settings_env
        ).exit_code
        == 2
    )
    assert (
        cli.invoke(
            app, ["feeds", "add", "ftp://x.example.org/f", "--list", "cyber-news"], env=settings_env
        ).exit_code
        == 2
    )
    assert cli.invoke(app, ["feeds", "fetch"], env=settings_env).exit_code == 2
    fetched = cli.invoke(app, ["feeds", "fetch", "--list", "cyber-news"], env=settings_env)
    assert fetched.exit_code == 0, fetched.output
    # (The command runs on the real clock: the Jan 2026 items are past the new-feed window.)
    assert "1 feed(s):" in fetched.output and "0 failed" in fetched.output
    listed = cli.invoke(app, ["feeds", "list", "--json"], env=settings_env)
    (record,) = json.loads(listed.stdout)
    assert record["name"] == "Clusters" and record["section"] == "Cluster news"
    assert record["last_status"] == 200 and record["healthy"] is True
    with runtime.sessions() as session:
        assert len(feeds_of(session, "cyber-news")) == 1


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:28:00 GMT", "garbage", "99999999"])
def test_retry_after_forms(value: str, clock: FrozenClock) -> None:
    from mailer.content.fetch import MAX_RETRY_AFTER, retry_at

    when = retry_at(value, clock.now(), timedelta(minutes=30))
    assert clock.now() <= when <= clock.now() + MAX_RETRY_AFTER


def test_timeout_and_per_host_cap(
    runtime: Runtime, make_list: Callable[..., str], feed_server: FeedServer
) -> None:
    make_list()
    body = (FEEDS / "rss10.rdf").read_bytes()
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most at once

    def slow(request: object) -> tuple[int, dict[str, str], bytes]:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
        return 200, {"Content-Type": "application/rss+xml"}, body

    def stuck(request: object) -> tuple[int, dict[str, str], bytes]:
        time.sleep(3)
        return 200, {}, body

    feed_server.routes["/stuck.xml"] = stuck
    for n in range(3):
        feed_server.routes[f"/slow{n}.xml"] = slow
        add(runtime, feed_server.url(f"/slow{n}.xml"))
    add(runtime, feed_server.url("/stuck.xml"))
    policy = FetchPolicy(user_agent="t", timeout=1, per_host=1)
    reports = asyncio.run(fetch_feeds(runtime.sessions, runtime.clock, "cyber-news", policy))
    by_url = {r.url: r for r in reports}
    assert by_url[feed_server.url("/stuck.xml")].detail == "no answer from 127.0.0.1 within 1 s"
    assert [by_url[feed_server.url(f"/slow{n}.xml")].outcome for n in range(3)] == ["updated"] * 3
    assert in_flight[1] == 1  # one request at a time to the one host
