"""A schedule that targets a segment: each slot's issue goes to that segment only, and the
segment cannot be removed under the schedule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.audience import segments, topics
from mailer.audience.profiles import Answers, apply
from mailer.cadence import cron
from mailer.cadence.schedules import ScheduleSpec
from mailer.content import feeds
from tests.cadence.test_schedules import write_feed
from tests.conftest import SMTPServer
from tests.consent_fixtures import cli_fixture, sql  # noqa: F401
from tests.delivery_fixtures import subscribe

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def test_each_slot_of_a_segmented_schedule_reaches_the_segment_only(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer, tmp_path: Path,
    cli: Callable[..., Result],
) -> None:  # fmt: skip
    make_list()
    for email, country in (("ana@example.org", "ES"), ("bo@example.org", "SE"),
                           ("cy@example.org", None)):  # fmt: skip
        subscribe(runtime, email)
        with runtime.sessions.begin() as session:
            [(sid,)] = sql(runtime, "SELECT id FROM subscribers WHERE email = :e", e=email)
            if country:
                apply(session, runtime.clock.now(), sid, 0, Answers(country=country))
    smtp_server.handler.received.clear()
    with runtime.sessions.begin() as session:
        topics.set_questions(session, "cyber-news", False, True, False)
        segments.add(session, runtime.clock.now(), "nordics", "cyber-news",
                     {"field": "country", "op": "in", "value": ["Sweden", "NO", "DK"]})  # fmt: skip
        feeds.add_feed(session, runtime.clock, "cyber-news",
                       str(write_feed(tmp_path / "f.xml", 2, runtime.clock.now())))  # fmt: skip
    unknown = cli(
        "schedules", "add", "--list", "cyber-news", "--cron", "0 9 * * MON", "--tz",
        "Europe/Madrid", "--segment", "nowhere",
    )  # fmt: skip
    assert unknown.exit_code == 2 and "no segment named 'nowhere'" in unknown.output
    view = runtime.schedules.add(
        ScheduleSpec("cyber-news", "0 9 * * MON", "Europe/Madrid", approval="auto",
                     segment="nordics")
    )  # fmt: skip
    assert view.segment == "nordics"
    [listed] = json.loads(cli("schedules", "list", "--json").output)
    assert listed["segment"] == "nordics"
    in_use = cli("segments", "remove", "nordics")
    assert in_use.exit_code == 2 and "a schedule targets the segment" in in_use.output

    slot = cron.next_slot("0 9 * * MON", "Europe/Madrid", runtime.clock.now()).at
    clock: FrozenClock = runtime.clock  # type: ignore[assignment]
    clock.set(slot + timedelta(minutes=1))
    outcome = asyncio.run(runtime.schedules.tick())
    assert [v.status for v in outcome] == ["sent"], outcome
    assert [r.rcpt_tos for r in smtp_server.received] == [["bo@example.org"]]
