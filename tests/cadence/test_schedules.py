"""Schedules on an injected clock: cadence, lead-time drafts, approval, skips, catch-up, races.

Everything is real but time: feeds are files, the issue is drafted and compiled
by the content services, and copies go through the delivery engine to an aiosmtpd
server on loopback, where they are counted.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.cadence import cron
from mailer.cadence.models import ScheduleSlot
from mailer.cadence.schedules import ScheduleSpec
from mailer.content import curation, feeds
from mailer.content.models import Issue
from tests.conftest import SMTPServer
from tests.delivery_fixtures import subscribe

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday; 10:00 in Madrid
SLOT = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)  # the next Monday 09:00 Madrid
READERS = ("ana@example.org", "bruno@example.org", "chiara@example.org")
EDITOR = "editor@example.org"


def write_feed(path: Path, stories: int, now: datetime) -> Path:
    items = "".join(
        f"<item><title>Cluster story {i}</title><link>https://news.example.net/{i}</link>"
        f"<guid>https://news.example.net/{i}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(days=1, hours=i))}</pubDate>"
        f"<description>Story {i} about European cybersecurity clusters.</description></item>"
        for i in range(stories)
    )
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Cluster desk</title>'
        f"<link>https://news.example.net/</link>{items}</channel></rss>",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def newsroom(
    runtime: Runtime, make_list: Callable[..., str], tmp_path: Path, smtp_server: SMTPServer
) -> Callable[..., int]:
    """A list with readers and a feed of `stories` items; adds a schedule, returns its id."""
    make_list()
    for reader in READERS:
        subscribe(runtime, reader)
    smtp_server.handler.received.clear()

    def add(stories: int = 3, **spec: object) -> int:
        feed = write_feed(tmp_path / "feed.xml", stories, runtime.clock.now())
        with runtime.sessions.begin() as session:
            feeds.add_feed(session, runtime.clock, "cyber-news", str(feed))
        values: dict[str, object] = {
            "list_slug": "cyber-news",
            "cron": "0 9 * * MON",
            "timezone": "Europe/Madrid",
            "editors": (EDITOR,),
        }
        values.update(spec)
        return runtime.schedules.add(ScheduleSpec(**values)).id  # type: ignore[arg-type]

    return add


def tick(runtime: Runtime) -> list[str]:
    return [f"{v.slot} {v.status}" for v in asyncio.run(runtime.schedules.tick())]


def copies(smtp_server: SMTPServer) -> Counter[str]:
    """Newsletter copies per reader, as counted at the server."""
    return Counter(
        r.rcpt_tos[0]
        for r in smtp_server.received
        if r.rcpt_tos[0] in READERS and r.message["Precedence"] == "bulk"
    )


def slots_of(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.sessions() as session:
        return [
            (row.slot_key, row.status)
            for row in session.scalars(select(ScheduleSlot).order_by(ScheduleSlot.slot_at))
        ]


def issues(runtime: Runtime) -> list[tuple[int, str]]:
    with runtime.sessions() as session:
        return [(i.id, i.status.value) for i in session.scalars(select(Issue).order_by(Issue.id))]


# -- cadence (pure) --------------------------------------------------------------


def test_weekly_cron_fires_at_the_right_instants_across_a_dst_change() -> None:
    fired = [
        s.at
        for s in cron.slots(
            "0 9 * * MON",
            "Europe/Madrid",
            datetime(2026, 3, 16, tzinfo=UTC),
            datetime(2026, 4, 7, tzinfo=UTC),
        )
    ]
    assert fired == [
        datetime(2026, 3, 16, 8, tzinfo=UTC),  # CET, UTC+1
        datetime(2026, 3, 23, 8, tzinfo=UTC),
        datetime(2026, 3, 30, 7, tzinfo=UTC),  # CEST, UTC+2, after 29 March
        datetime(2026, 4, 6, 7, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    "start,end,expected",
    [
        # 02:30 does not exist on 29 March in Madrid: the slot runs once, at 01:30 UTC.
        (datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC), 3),
        # 02:30 happens twice on 25 October: still one slot that day.
        (datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC), 3),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_daily_slot_in_a_dst_hour_runs_exactly_once(start, end, expected) -> None:
    found = list(cron.slots("30 2 * * *", "Europe/Madrid", start, end))
    assert len(found) == expected
    assert len({s.key[:10] for s in found}) == expected  # one per local day


@pytest.mark.parametrize("text,minutes", [("24h", 1440), ("90m", 90), ("0", 0), (" 2h ", 120)])
def test_durations(text: str, minutes: int) -> None:
    assert cron.parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "1d", "h", "24", "-1h", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(cron.CadenceError):
        cron.parse_duration(text)


# -- the service, end to end -----------------------------------------------------


def test_lead_time_draft_then_the_approval_gate(
    runtime: Runtime, clock: FrozenClock, smtp_server: SMTPServer, newsroom
) -> None:
    newsroom(lead=timedelta(hours=24))
    clock.set(SLOT - timedelta(hours=24, minutes=1))
    assert tick(runtime) == []
    clock.set(SLOT - timedelta(hours=24))
    assert tick(runtime) == ["2026-01-12T09:00 drafted"]
    assert tick(runtime) == []  # one draft per slot, however often the tick runs
    [(issue_id, status)] = issues(runtime)
    assert status == "draft"
    [told] = smtp_server.to(EDITOR)
    assert "please review" in told.message["Subject"]
    assert f"/api/lists/cyber-news/issues/{issue_id}/preview.html" in told.data.decode()

    clock.set(SLOT)
    assert tick(runtime) == ["2026-01-12T09:00 held"]
    assert copies(smtp_server) == Counter()
    assert "not approved" in smtp_server.to(EDITOR)[-1].message["Subject"]
    clock.advance(minutes=30)
    assert tick(runtime) == []  # still held; editors told once

    with runtime.sessions.begin() as session:
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue_id)
    clock.advance(minutes=1)
    assert tick(runtime) == ["2026-01-12T09:00 sent"]
    assert copies(smtp_server) == Counter({r: 1 for r in READERS})
    assert issues(runtime) == [(issue_id, "sent")]
    clock.advance(days=1)
    assert tick(runtime) == []
    assert copies(smtp_server) == Counter({r: 1 for r in READERS})


def test_auto_approval_sends_at_the_slot(
    runtime: Runtime, clock: FrozenClock, smtp_server: SMTPServer, newsroom
) -> None:
    newsroom(approval="auto")
    clock.set(SLOT - timedelta(minutes=1))
    assert tick(runtime) == []
    clock.set(SLOT)
    assert tick(runtime) == ["2026-01-12T09:00 sent"]
    assert copies(smtp_server) == Counter({r: 1 for r in READERS})
    message = next(r for r in smtp_server.received if r.rcpt_tos == [READERS[0]]).message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Cluster story 0" in message.as_string()


def test_too_few_items_skips_the_slot_and_says_why(
    runtime: Runtime, clock: FrozenClock, smtp_server: SMTPServer, newsroom
) -> None:
    newsroom(stories=2, approval="auto", min_items=3)
    clock.set(SLOT)
    assert tick(runtime) == ["2026-01-12T09:00 skipped"]
    [view] = runtime.schedules.views()
    assert view.slots[0].reason == "2 new entries; the schedule needs 3"
    assert issues(runtime) == []  # the draft is discarded: its items wait for the next slot
    assert copies(smtp_server) == Counter()


def test_a_missed_slot_is_caught_up_within_grace(
    runtime: Runtime, clock: FrozenClock, smtp_server: SMTPServer, newsroom
) -> None:
    newsroom(approval="auto")
    clock.set(SLOT + timedelta(hours=5, minutes=59))  # the service was down at 09:00
    assert tick(runtime) == ["2026-01-12T09:00 sent"]
    assert copies(smtp_server) == Counter({r: 1 for r in READERS})


def test_slots_missed_beyond_grace_are_marked_missed_and_never_sent_in_a_row(
    runtime: Runtime, clock: FrozenClock, smtp_server: SMTPServer, newsroom
) -> None:
    newsroom(approval="auto")
    clock.set(SLOT + timedelta(weeks=2, hours=7))  # down for three slots
    assert tick(runtime) == []
    assert slots_of(runtime) == [
        ("2026-01-12T09:00", "missed"),
        ("2026-01-19T09:00", "missed"),
        ("2026-01-26T09:00", "missed"),
    ]
    [view] = runtime.schedules.views()
    assert view.slots[0].reason == "past the grace period"
    assert view.next_slot == "2026-02-02T09:00"
    assert copies(smtp_server) == Counter()
    assert issues(runtime) == []


def test_a_restart_in_the_middle_of_a_slot_does_not_send_twice(
    runtime: Runtime,
    clock: FrozenClock,
    smtp_server: SMTPServer,
    newsroom,
    settings,
) -> None:
    newsroom(approval="auto")
    clock.set(SLOT)
    assert tick(runtime) == ["2026-01-12T09:00 sent"]
    # As if the process died after the copies left but before the slot was marked sent.
    with runtime.sessions.begin() as session:
        session.execute(update(ScheduleSlot).values(status="sending"))
    restarted = Runtime.build(settings, clock=clock)
    try:
        assert tick(restarted) == ["2026-01-12T09:00 sent"]
    finally:
        restarted.close()
    assert copies(smtp_server) == Counter({r: 1 for r in READERS})


def test_two_schedulers_racing_make_one_issue_and_one_send(
    runtime: Runtime,
    clock: FrozenClock,
    smtp_server: SMTPServer,
    newsroom,
    settings,
) -> None:
    newsroom(approval="auto")
    clock.set(SLOT)
    others = [Runtime.build(settings, clock=clock) for _ in range(2)]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(others))

    def run(rt: Runtime) -> None:
        try:
            barrier.wait()
            results.append(tick(rt))
        except BaseException as exc:  # noqa: BLE001  (reported below, from the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(rt,)) for rt in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for rt in others:
        rt.close()
    assert not errors
    assert sorted(len(r) for r in results) == [0, 1] or sum(len(r) for r in results) == 1
    assert len(issues(runtime)) == 1
    assert slots_of(runtime) == [("2026-01-12T09:00", "sent")]
    assert copies(smtp_server) == Counter({r: 1 for r in READERS})


# -- the command line --------------------------------------------------------------


def test_schedules_cli_add_list_remove_and_bad_input(
    settings_env: dict[str, str], make_list: Callable[..., str]
) -> None:
    import json

    from typer.testing import CliRunner

    from mailer.cli import app

    make_list()
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env=settings_env)

    added = run(
        "schedules", "add", "--list", "cyber-news", "--cron", "0 9 * * MON",
        "--tz", "Europe/Madrid", "--lead", "24h", "--min-items", "3",
        "--editor", "editor@example.org",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "schedule 1 added to cyber-news: next slot" in added.output
    [record] = json.loads(run("schedules", "list", "--json").stdout)
    assert record["cron"] == "0 9 * * MON" and record["timezone"] == "Europe/Madrid"
    assert record["lead"] == "24h" and record["min_items"] == 3
    assert record["approval"] == "required" and record["editors"] == ["editor@example.org"]
    assert record["next_slot"].endswith("T09:00") and record["slots"] == []
    every_minute = run(
        "schedules", "add", "--list", "cyber-news", "--cron", "* * * * *", "--tz", "UTC",
        "--approval", "auto",
    )  # fmt: skip
    assert every_minute.exit_code == 0, every_minute.output

    for args, message in [
        (["--cron", "0 9 * *", "--tz", "UTC"], "five fields"),
        (["--cron", "0 25 * * MON", "--tz", "UTC"], "not a valid cron"),
        (["--cron", "0 9 * * MON", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["--cron", "0 9 * * MON", "--tz", "UTC", "--lead", "1d"], "24h, 90m or 0"),
        (["--cron", "0 9 * * MON", "--tz", "UTC", "--approval", "maybe"], "approval"),
        (["--cron", "0 9 * * MON", "--tz", "UTC", "--editor", "not-an-address"], "not a valid"),
    ]:
        bad = run("schedules", "add", "--list", "cyber-news", *args)
        assert bad.exit_code == 2, (args, bad.output)
        assert message in bad.output, (args, bad.output)
    unknown = run("schedules", "add", "--list", "nope", "--cron", "0 9 * * MON", "--tz", "UTC")
    assert unknown.exit_code == 2 and "no list named" in unknown.output

    assert run("schedules", "remove", "1").exit_code == 0
    assert [r["id"] for r in json.loads(run("schedules", "list", "--json").stdout)] == [2]
    missing = run("schedules", "remove", "1")
    assert missing.exit_code == 2 and "no schedule 1" in missing.output


def test_lead_time_reads_the_lists_calendars_again(
    runtime: Runtime, clock: FrozenClock, smtp_server: SMTPServer, newsroom
) -> None:
    import asyncio

    from mailer.content import calendars
    from mailer.content.fetch import FetchPolicy
    from mailer.content.models import IssueEntry, ProjectEvent
    from tests.content_fixtures import serve_feeds

    def calendar(*titles: str) -> bytes:
        events = "".join(
            "BEGIN:VEVENT\r\n"
            f"UID:webinar-{i}@example.org\r\nSUMMARY:{title}\r\n"
            f"DTSTART:202601{14 + i}T150000Z\r\nDTEND:202601{14 + i}T160000Z\r\n"
            "DTSTAMP:20260101T000000Z\r\nEND:VEVENT\r\n"
            for i, title in enumerate(titles)
        )
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//demo//EN\r\n"
            f"{events}END:VCALENDAR\r\n"
        ).encode()

    server_gen = serve_feeds()
    server = next(server_gen)
    try:
        body = {"ics": calendar("Webinar: cluster funding")}
        server.routes["/webinars.ics"] = lambda _request: (
            200,
            {"Content-Type": "text/calendar"},
            body["ics"],
        )
        url = server.url("/webinars.ics")
        imported = asyncio.run(
            calendars.import_from(
                runtime.sessions, runtime.clock, "cyber-news", url, FetchPolicy(timeout=5)
            )
        )
        assert imported.outcome == "updated"
        newsroom(lead=timedelta(hours=24))
        # The project adds a second webinar to its calendar after the import.
        body["ics"] = calendar("Webinar: cluster funding", "Workshop: incident response")
        clock.set(SLOT - timedelta(hours=24))
        assert tick(runtime) == ["2026-01-12T09:00 drafted"]
    finally:
        server_gen.close()
    with runtime.sessions() as session:
        titles = set(
            session.scalars(
                select(ProjectEvent.title)
                .join(IssueEntry, IssueEntry.event_id == ProjectEvent.id)
                .where(IssueEntry.included.is_(True))
            )
        )
    assert titles == {"Webinar: cluster funding", "Workshop: incident response"}


# -- the running service: a clean stop in the middle of a send ----------------------


def test_stopping_the_service_mid_send_pauses_cleanly_and_resumes_once(
    settings, clock: FrozenClock, make_list: Callable[..., str], tmp_path: Path
) -> None:
    """What SIGTERM does to `mailer serve`: in-flight transactions finish, state is kept."""
    import time as _time

    from aiosmtpd.controller import Controller

    from mailer.delivery.models import Delivery, DeliveryStatus
    from mailer.service.lifecycle import Service
    from mailer.service.scheduler import Scheduler
    from tests.conftest import RecordingHandler, free_port

    class SlowHandler(RecordingHandler):
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(0.02)
            return await super().handle_DATA(server, session, envelope)

    handler = SlowHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    readers = [f"reader{i:02d}@example.org" for i in range(40)]
    rt = Runtime.build(
        settings.model_copy(
            update={"smtp_url": f"smtp://127.0.0.1:{controller.port}", "concurrency": 2}
        ),
        clock=clock,
    )
    try:
        make_list()
        for reader in readers:
            subscribe(rt, reader)
        handler.received.clear()
        feed = write_feed(tmp_path / "feed.xml", 3, clock.now())
        with rt.sessions.begin() as session:
            feeds.add_feed(session, rt.clock, "cyber-news", str(feed))
        rt.schedules.add(
            ScheduleSpec(
                list_slug="cyber-news",
                cron="0 9 * * MON",
                timezone="Europe/Madrid",
                approval="auto",
            )
        )
        clock.set(SLOT)
        service = Service(rt, Scheduler(tick=rt.schedules.tick, tick_every=timedelta(hours=1)))

        async def run_then_stop() -> None:
            async with service.lifespan(None):
                deadline = _time.monotonic() + 20
                while len(handler.received) < 5 and _time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            # leaving the lifespan is what uvicorn does on SIGTERM

        asyncio.run(run_then_stop())
        delivered = Counter(r.rcpt_tos[0] for r in handler.received)
        assert 5 <= sum(delivered.values()) < len(readers)  # stopped mid-send
        with rt.sessions() as session:
            statuses = Counter(str(s) for s in session.scalars(select(Delivery.status)))
        assert statuses.get(DeliveryStatus.SENDING, 0) == 0  # nothing left half-done
        assert statuses[DeliveryStatus.SENT] == sum(delivered.values())
        assert slots_of(rt) == [("2026-01-12T09:00", "sending")]

        # The next start resumes the slot: everyone gets exactly one copy.
        clock.advance(minutes=1)
        assert tick(rt) == ["2026-01-12T09:00 sent"]
        delivered = Counter(r.rcpt_tos[0] for r in handler.received)
        assert delivered == Counter({r: 1 for r in readers})
    finally:
        rt.close()
        controller.stop()
