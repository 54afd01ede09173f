"""The scheduler's housekeeping jobs, run as the scheduler runs them (one call each)."""

from __future__ import annotations

import asyncio
import mailbox
import shutil
from collections.abc import Callable
from pathlib import Path

from consent import preferences
from consent.models import Status
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.content.models import IssueStatus
from mailer.service import housekeeping
from tests.delivery_fixtures import (  # noqa: F401  (picky_server is a fixture)
    PickyHandler,
    approved_issue,
    picky_server_fixture,
    subscribe,
)
from tests.helpers import DATA

BOUNCES = DATA / "bounces"


def test_retry_job_finishes_a_campaign_left_waiting(
    settings: Settings, clock, make_list: Callable[..., str], picky_server
) -> None:
    url, handler = picky_server
    assert isinstance(handler, PickyHandler)
    handler.defer_first = {"bruno@example.org"}
    rt = Runtime.build(
        settings.model_copy(update={"smtp_url": url, "retry_linger": 0}), clock=clock
    )
    try:
        make_list()
        for reader in ("ana@example.org", "bruno@example.org"):
            subscribe(rt, reader)
        issue_id = approved_issue(rt)
        assert asyncio.run(rt.schedules.publisher.send(issue_id)) is False  # one deferred

        def retry() -> int:
            return asyncio.run(
                housekeeping.retry_deferred(rt.sessions, rt.schedules.publisher.send)
            )

        assert handler.count("bruno@example.org") == 0
        assert retry() == 1
        assert handler.count("bruno@example.org") == 0  # not due yet: nothing sent
        clock.advance(minutes=6)
        assert retry() == 1
        assert handler.count("bruno@example.org") == 1
        assert handler.count("ana@example.org") == 1
        with rt.sessions() as session:
            from mailer.content.curation import get_issue

            assert get_issue(session, issue_id).status == IssueStatus.SENT
        assert retry() == 0
    finally:
        rt.close()


def test_bounce_job_reads_the_maildir_and_suppresses(
    settings: Settings, clock, make_list: Callable[..., str], tmp_path: Path, smtp_server
) -> None:
    box = mailbox.Maildir(str(tmp_path / "bounces"), create=True)
    raw = (BOUNCES / "postfix_dsn_user_unknown.eml").read_bytes()
    box.add(raw)
    rt = Runtime.build(
        settings.model_copy(update={"bounce_maildir": str(tmp_path / "bounces")}), clock=clock
    )
    try:
        make_list()
        bounced = _recipient_of(raw)
        subscribe(rt, bounced)
        maildir = tmp_path / "bounces"
        assert asyncio.run(housekeeping.process_bounces(rt.bounce_processor(), maildir)) == 1
        [row] = preferences.subscribers(rt.consent, "cyber-news")
        assert row.status == Status.SUPPRESSED.value
        again = asyncio.run(housekeeping.process_bounces(rt.bounce_processor(), maildir))
        assert again == 0  # moved to cur/: read once
    finally:
        rt.close()
        shutil.rmtree(tmp_path / "bounces")


def _recipient_of(raw: bytes) -> str:
    import re

    found = re.search(rb"Final-Recipient: rfc822;\s*(\S+)", raw)
    assert found
    return found.group(1).decode()
