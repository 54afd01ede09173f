"""Project events: iCalendar import with a weekly webinar in its time zone, manual entry, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from consent.addresses import InvalidInput
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.content.events import EventSpec, add_event, events_of, upcoming
from mailer.content.ical import import_calendar
from mailer.content.issue_content import when_label
from tests.content_fixtures import ICS

WEBINARS = (ICS / "webinars.ics").read_bytes()


def imported(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        report = import_calendar(session, runtime.clock, "cyber-news", WEBINARS, "webinars.ics")
    assert (report.added, report.skipped) == (3, 1)  # the cancelled one is skipped


def test_weekly_recurring_webinar_in_its_time_zone(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()  # the list's zone is Europe/Madrid; the webinar's is Europe/Rome
    imported(runtime)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    with runtime.sessions() as session:
        found = upcoming(session, "cyber-news", start, start + timedelta(days=62))
    series = [o for o in found if o.title.startswith("Cluster Hour")]
    # 8 Tuesdays from 13 January, less the one excluded on 27 January.
    assert len(series) == 7
    assert [o.starts_at.date().isoformat() for o in series[:3]] == [
        "2026-01-13",
        "2026-01-20",
        "2026-02-03",
    ]
    assert series[0].starts_at == datetime(2026, 1, 13, 14, 0, tzinfo=UTC)  # 15:00 in Rome
    assert series[0].timezone == "Europe/Rome"
    moved = series[2]  # the 3 February date was moved to 17:00 with its own title
    assert moved.starts_at == datetime(2026, 2, 3, 16, 0, tzinfo=UTC)
    assert moved.title.startswith("Cluster Hour (moved to 17:00)")
    # Soonest first, whatever their kind.
    assert [o.starts_at for o in found] == sorted(o.starts_at for o in found)
    all_day = next(o for o in found if o.all_day)
    assert all_day.title == "Cyberwatching.eu annual event"
    tz = ZoneInfo("Europe/Madrid")
    assert when_label(series[0].starts_at, series[0].ends_at, False, tz) == (
        "Tue 13 January 2026, 15:00–16:00 CET"
    )
    assert when_label(all_day.starts_at, all_day.ends_at, True, tz) == (
        "Thu 19 February 2026 (all day)"
    )


def test_summer_time_occurrences(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    series = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        b"UID:summer@example.org\r\nDTSTAMP:20260101T000000Z\r\n"
        b"DTSTART;TZID=Europe/Rome:20260317T150000\r\nDURATION:PT1H\r\n"
        b"RRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:Across the change\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with runtime.sessions.begin() as session:
        import_calendar(session, runtime.clock, "cyber-news", series, "inline")
        found = upcoming(
            session,
            "cyber-news",
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 4, 30, tzinfo=UTC),
        )
    assert [o.starts_at.hour for o in found] == [14, 14, 13]  # CET, CET, then CEST


def test_reimport_updates_by_uid(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    imported(runtime)
    changed = WEBINARS.replace(b"SME end-user club: validating", b"SME club: validating")
    with runtime.sessions.begin() as session:
        report = import_calendar(session, runtime.clock, "cyber-news", changed, "webinars.ics")
        assert (report.added, report.updated) == (0, 3)
        titles = [e.title for e in events_of(session, "cyber-news")]
    assert "SME club: validating R&I results" in titles and len(titles) == 3


def test_manual_event(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    spec = EventSpec(
        "Concertation meeting",
        "2026-02-05T09:30",
        "2026-02-05T17:00",
        "Europe/Rome",
        "Rome",
        "https://events.example.org/c",
        "Projects meet.",
    )
    with runtime.sessions.begin() as session:
        event = add_event(session, runtime.clock, "cyber-news", spec)
        assert event.starts_at == datetime(2026, 2, 5, 8, 30, tzinfo=UTC)
        assert event.timezone == "Europe/Rome"
        default = add_event(
            session, runtime.clock, "cyber-news", EventSpec("Call", "2026-02-06T10:00")
        )
        assert default.timezone == "Europe/Madrid"  # the list's zone
        assert default.ends_at == default.starts_at + timedelta(hours=1)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (EventSpec("X", "tomorrow"), "not a date and time"),
        (EventSpec("X", "2026-02-05T10:00", "2026-02-05T09:00"), "end after it starts"),
        (EventSpec("X", "2026-02-05T10:00", tz="Mars/Olympus"), "unknown time zone"),
        (EventSpec("X", "2026-02-05T10:00", url="javascript:alert(1)"), "http"),
        (EventSpec("", "2026-02-05T10:00"), "title is required"),
    ],
)
def test_manual_event_bad_input(
    runtime: Runtime, make_list: Callable[..., str], spec: EventSpec, problem: str
) -> None:
    make_list()
    with runtime.sessions.begin() as session, pytest.raises(InvalidInput, match=problem):
        add_event(session, runtime.clock, "cyber-news", spec)


def test_not_a_calendar(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    with runtime.sessions.begin() as session, pytest.raises(InvalidInput, match="iCalendar"):
        import_calendar(session, runtime.clock, "cyber-news", b"\x00garbage", "x")


def test_cli_events(settings_env: dict[str, str], make_list: Callable[..., str]) -> None:
    make_list()
    cli = CliRunner()
    result = cli.invoke(
        app,
        ["events", "import", str(ICS / "webinars.ics"), "--list", "cyber-news"],
        env=settings_env,
    )
    assert result.exit_code == 0, result.output
    assert "3 added, 0 updated, 1 skipped" in result.output
    added = cli.invoke(
        app,
        [
            "events",
            "add",
            "--list",
            "cyber-news",
            "--title",
            "Cluster call",
            "--start",
            "2026-03-03T10:00",
            "--end",
            "2026-03-03T11:00",
            "--tz",
            "Europe/Brussels",
            "--location",
            "Online",
            "--url",
            "https://events.example.org/call",
            "--description",
            "An open call.",
        ],
        env=settings_env,
    )
    assert added.exit_code == 0, added.output
    bad = cli.invoke(
        app,
        ["events", "add", "--list", "cyber-news", "--title", "X", "--start", "soon"],
        env=settings_env,
    )
    assert bad.exit_code == 2 and "not a date and time" in bad.output
    missing = cli.invoke(
        app, ["events", "import", "/no/such.ics", "--list", "cyber-news"], env=settings_env
    )
    assert missing.exit_code == 2
    listed = json.loads(
        cli.invoke(
            app, ["events", "list", "--list", "cyber-news", "--json"], env=settings_env
        ).stdout
    )
    assert len(listed) == 4
    series = next(e for e in listed if e["recurring"])
    assert series["timezone"] == "Europe/Rome" and series["when"].startswith("Tue 13 January")
