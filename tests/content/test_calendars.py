"""Calendars read through the feed fetcher over real sockets: size cap, conditional GET, health."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from mailer.app import db
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.content import calendars
from mailer.content.fetch import FetchPolicy
from mailer.content.models import Calendar, ProjectEvent
from tests.conftest import POSTGRES_URL
from tests.content_fixtures import FeedServer, Request, serve_feeds

POLICY = FetchPolicy(user_agent="mailer-tests/1 (+https://news.example.org)", timeout=5)
ETAG, MODIFIED = '"cal-v1"', "Sun, 04 Jan 2026 10:00:00 GMT"


def calendar(*titles: str, filler: int = 0) -> bytes:
    """A calendar of one-hour webinars; `filler` bytes of description make it large."""
    events = "".join(
        "BEGIN:VEVENT\r\n"
        f"UID:webinar-{i}@example.org\r\nSUMMARY:{title}\r\n"
        f"DTSTART:202601{14 + i}T150000Z\r\nDTEND:202601{14 + i}T160000Z\r\n"
        "DTSTAMP:20260101T000000Z\r\nEND:VEVENT\r\n"
        for i, title in enumerate(titles)
    )
    if filler:  # last, so a cut falls inside it
        line = " " + "x" * 73 + "\r\n"
        folded = line * (filler // len(line) + 1)
        events += (
            "BEGIN:VEVENT\r\nUID:archive@example.org\r\nSUMMARY:Archive\r\n"
            "DTSTART:20251201T150000Z\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DESCRIPTION:x\r\n{folded}END:VEVENT\r\n"
        )
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//demo//EN\r\n{events}END:VCALENDAR\r\n"
    ).encode()


class Served:
    """What the server answers at /webinars.ics: a body with validators, 304 when they match."""

    def __init__(self, server: FeedServer) -> None:
        self.body = calendar("Webinar: cluster funding", "Workshop: incident response")
        self.etag: str | None = ETAG
        self.modified: str | None = MODIFIED
        server.routes["/webinars.ics"] = self.answer
        self.url = server.url("/webinars.ics")

    def answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "text/calendar"}
        if self.etag:
            headers["ETag"] = self.etag
        if self.modified:
            headers["Last-Modified"] = self.modified
        if self.etag and request.headers.get("if-none-match") == self.etag:
            return 304, headers, b""
        return 200, headers, self.body


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    yield from serve_feeds()


@pytest.fixture
def served(feed_server: FeedServer) -> Served:
    return Served(feed_server)


@pytest.fixture
def cli(settings_env: dict[str, str]) -> Callable[..., object]:
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), env=settings_env)


def titles(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return sorted(session.scalars(select(ProjectEvent.title)))


def stored(runtime: Runtime) -> Calendar:
    with runtime.sessions() as session:
        return session.scalars(select(Calendar)).one()


# -- `mailer events import URL` ------------------------------------------------------


def test_an_oversized_calendar_is_refused_not_cut_and_the_events_are_kept(
    runtime: Runtime, make_list: Callable[..., str], served: Served, cli
) -> None:
    make_list()
    first = cli("events", "import", served.url, "--list", "cyber-news")
    assert first.exit_code == 0, first.output
    assert "2 added, 0 updated, 0 skipped" in first.output
    # The project renames a webinar, and its calendar grows past the 5 MB cap.
    served.body = calendar("Webinar: renamed", "Workshop: incident response", filler=5_100_000)
    served.etag, served.modified = '"cal-v2"', None

    refused = cli("events", "import", served.url, "--list", "cyber-news")

    assert refused.exit_code == 1, refused.output
    assert "larger than 5000000 bytes" in refused.output
    assert "refused, not cut" in refused.output
    assert "Traceback" not in refused.output
    assert titles(runtime) == ["Webinar: cluster funding", "Workshop: incident response"]


def test_a_304_is_honoured_with_the_validators_kept_per_calendar(
    runtime: Runtime,
    make_list: Callable[..., str],
    served: Served,
    feed_server: FeedServer,
    cli,
) -> None:
    make_list()
    assert cli("events", "import", served.url, "--list", "cyber-news").exit_code == 0

    again = cli("events", "import", served.url, "--list", "cyber-news")

    assert again.exit_code == 0, again.output
    assert "not modified since the last import" in again.output
    last = feed_server.to("/webinars.ics")[-1]
    assert last.headers["if-none-match"] == ETAG
    assert last.headers["if-modified-since"] == MODIFIED
    assert last.headers["user-agent"].startswith("mailer/0.1 (newsletter feed reader; +https://")
    assert "text/calendar" in last.headers["accept"]
    assert titles(runtime) == ["Webinar: cluster funding", "Workshop: incident response"]


def test_a_calendar_file_over_the_cap_is_bad_input(
    runtime: Runtime, make_list: Callable[..., str], tmp_path: Path, cli
) -> None:
    make_list()
    big = tmp_path / "big.ics"
    big.write_bytes(calendar("Webinar", filler=5_100_000))
    refused = cli("events", "import", str(big), "--list", "cyber-news")
    assert refused.exit_code == 2, refused.output
    assert "larger than 5000000 bytes" in refused.output
    assert titles(runtime) == []


# -- the calendars a list remembers, read again before each draft -------------------------


def refresh(runtime: Runtime, policy: FetchPolicy = POLICY) -> list[calendars.CalendarReport]:
    return asyncio.run(
        calendars.refresh_calendars(runtime.sessions, runtime.clock, "cyber-news", policy)
    )


def test_refresh_reads_again_with_a_conditional_get_and_keeps_health(
    runtime: Runtime, make_list: Callable[..., str], served: Served, feed_server: FeedServer
) -> None:
    make_list()
    report = asyncio.run(
        calendars.import_from(runtime.sessions, runtime.clock, "cyber-news", served.url, POLICY)
    )
    assert (report.outcome, report.added, report.status) == ("updated", 2, 200)
    kept = stored(runtime)
    assert (kept.url, kept.etag, kept.last_modified) == (served.url, ETAG, MODIFIED)

    [unchanged] = refresh(runtime)
    assert (unchanged.outcome, unchanged.status) == ("not-modified", 304)
    assert feed_server.to("/webinars.ics")[-1].headers["user-agent"].startswith("mailer-tests/1")

    served.body = calendar("Webinar: renamed", "Workshop: incident response", filler=3000)
    served.etag = '"cal-v2"'
    [refused] = refresh(runtime, FetchPolicy(user_agent="mailer-tests/1", max_bytes=2000))
    assert refused.outcome == "failed" and "larger than 2000 bytes" in refused.detail
    health = stored(runtime)
    assert (health.failures, health.last_status, health.etag) == (1, 200, ETAG)
    assert "larger than 2000 bytes" in health.last_error
    assert titles(runtime) == ["Webinar: cluster funding", "Workshop: incident response"]

    [updated] = refresh(runtime)
    assert (updated.outcome, updated.updated, updated.added) == ("updated", 2, 1)
    health = stored(runtime)
    assert (health.failures, health.last_error, health.etag) == (0, "", '"cal-v2"')
    assert "Webinar: renamed" in titles(runtime)


def test_a_calendar_that_is_not_icalendar_is_a_failure_that_keeps_the_events(
    runtime: Runtime, make_list: Callable[..., str], served: Served
) -> None:
    make_list()
    asyncio.run(
        calendars.import_from(runtime.sessions, runtime.clock, "cyber-news", served.url, POLICY)
    )
    served.body, served.etag = b"<html>Maintenance</html>", '"broken"'
    [broken] = refresh(runtime)
    assert broken.outcome == "failed" and "not an iCalendar file" in broken.detail
    assert stored(runtime).failures == 1
    assert titles(runtime) == ["Webinar: cluster funding", "Workshop: incident response"]


# -- upgrading a database whose events came from URLs ---------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not migrated): a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL run skipped: MAILER_TEST_POSTGRES_URL is not set")
    schema = f"m_{uuid.uuid4().hex[:10]}"
    admin = create_engine(db.normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_the_upgrade_remembers_the_calendars_events_were_imported_from(
    empty_db_url: str,
) -> None:
    engine = db.make_engine(empty_db_url)
    try:
        for revision in ("0003_delivery", "0004_schedules", "0005_list_phone"):
            db.upgrade(engine, revision)  # the heads before calendars were remembered
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO lists (id, slug, name, purpose, cadence, controller_name,"
                    " controller_contact, controller_address, controller_phone, timezone,"
                    " created_at) VALUES (1, 'news', 'News', 'p', 'monthly', 'C',"
                    " 'dpo@example.org', '', '', 'UTC', '2026-01-01 09:00:00')"
                )
            )
            for uid, source, day in (
                ("a", "https://events.example.org/cal.ics", 2),
                ("b", "https://events.example.org/cal.ics", 3),
                ("c", "/home/editor/webinars.ics", 4),
                ("d", "manual", 5),
            ):
                connection.execute(
                    text(
                        "INSERT INTO project_events (list_id, uid, title, description, location,"
                        " url, starts_at, timezone, all_day, source, created_at, updated_at)"
                        " VALUES (1, :uid, 'T', '', '', '', '2026-02-01 10:00:00', 'UTC', false,"
                        " :source, :at, :at)"
                    ),
                    {"uid": uid, "source": source, "at": f"2026-01-0{day} 09:00:00"},
                )

        db.upgrade(engine)

        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT list_id, url, added_at, failures, last_error FROM calendars")
            ).all()
        assert [(r.list_id, r.url, r.failures, r.last_error) for r in rows] == [
            (1, "https://events.example.org/cal.ics", 0, "")
        ]
        assert str(rows[0].added_at).startswith("2026-01-02 09:00:00")
    finally:
        engine.dispose()
