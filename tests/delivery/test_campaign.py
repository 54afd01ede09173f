"""The campaign against real SMTP servers on loopback: who gets a copy, and how many."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from consent.clock import FrozenClock
from consent.models import ConsentEvent
from consent.suppression import address_hmac, is_suppressed
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.content.models import Issue, IssueStatus
from mailer.delivery.models import Campaign, Delivery
from mailer.delivery.pool import SMTPPool
from tests.conftest import SECRET, SMTPServer
from tests.delivery_fixtures import (
    PickyHandler,
    advancing_sleep,
    approved_issue,
    picky_server_fixture,  # noqa: F401  (the picky_server fixture)
    request_only,
    subscribe,
)
from tests.helpers import parts

OPERATOR = Evidence(method="operator", source="test")


def run(runtime: Runtime, issue_id: int, **options: object) -> object:
    return asyncio.run(runtime.campaign(issue_id, **options).run())


def rows(runtime: Runtime, issue_id: int) -> dict[int, Delivery]:
    with runtime.sessions() as session:
        return {
            d.subscriber_id: d
            for d in session.scalars(select(Delivery).where(Delivery.issue_id == issue_id))
        }


def test_campaign_reaches_exactly_the_active_subscribers(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    make_list()
    active = [f"reader{i}@example.org" for i in range(6)]
    for i, email in enumerate(active):
        subscribe(runtime, email, f"Reader {i}")
    request_only(runtime, "pending@example.org")
    subscribe(runtime, "left@example.org")
    runtime.consent.unsubscribe_address("cyber-news", "left@example.org", OPERATOR)
    subscribe(runtime, "blocked@example.org")
    runtime.consent.suppress("blocked@example.org", "*", "operator", OPERATOR)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()  # the confirmation and welcome mails

    summary = run(runtime, issue_id)

    got = Counter(r for m in smtp_server.received for r in m.rcpt_tos)
    assert got == Counter(active)
    assert summary.state == "finished"  # type: ignore[attr-defined]
    assert summary.counts == {"sent": 6}  # type: ignore[attr-defined]
    ids = {m.message["Message-ID"] for m in smtp_server.received}
    assert len(ids) == 6
    message = smtp_server.to("reader3@example.org")[0].message
    for header in (
        "Date",
        "From",
        "To",
        "Subject",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Precedence",
    ):
        assert len(message.get_all(header) or []) == 1, header
    assert message["To"] == "Reader 3 <reader3@example.org>"
    assert message["Precedence"] == "bulk"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    assert message["List-Id"] == '"Cyberwatching.eu Cluster News" <cyber-news.example.org>'
    text, html = parts(message)
    assert "Hello Reader 3," in text and "Hello Reader 3," in html
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe in text and unsubscribe in html
    with runtime.sessions() as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None and issue.status == IssueStatus.SENT
        assert issue.sent_at is not None
    # Sending again sends nothing: everyone was served.
    smtp_server.received.clear()
    run(runtime, issue_id)
    assert smtp_server.received == []


def test_an_unsubscribe_during_the_campaign_stops_that_copy(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    make_list()
    emails = [f"r{i:02d}@example.org" for i in range(12)]
    for email in emails:
        subscribe(runtime, email)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    pool = SMTPPool(smtp_server.url, concurrency=1, rate=40)

    async def campaign_with_a_leaver() -> None:
        runner = runtime.campaign(issue_id, pool=pool)
        task = asyncio.create_task(runner.run())
        while len(smtp_server.received) < 2:  # the batch was taken long before
            await asyncio.sleep(0.01)
        runtime.consent.unsubscribe_address("cyber-news", emails[-1], OPERATOR)
        await task

    asyncio.run(campaign_with_a_leaver())
    assert smtp_server.to(emails[-1]) == []
    assert all(len(smtp_server.to(e)) == 1 for e in emails[:-1])
    statuses = Counter(d.status for d in rows(runtime, issue_id).values())
    assert statuses == {"sent": 11, "cancelled": 1}


def test_451_replies_and_dropped_connections_still_serve_everyone_once(
    runtime: Runtime,
    make_list: Callable[..., str],
    picky_server: tuple[str, PickyHandler],
    clock: FrozenClock,
) -> None:
    url, handler = picky_server
    make_list()
    emails = [f"p{i:02d}@example.org" for i in range(24)]
    for email in emails:
        subscribe(runtime, email)
    handler.defer_first = set(emails[::4])
    handler.drop_every = 5
    issue_id = approved_issue(runtime)
    opened = 0

    def send() -> Any:
        nonlocal opened
        pool = SMTPPool(url, concurrency=3, rate=1000, max_per_connection=4)
        summary = run(runtime, issue_id, pool=pool, sleep=advancing_sleep(clock))
        opened += pool.connections_opened
        return summary

    summary = send()
    # A copy whose every attempt meets a drop (a 451, then two dropped links: which MAIL is
    # the fifth depends on how the connections interleave) waits for its next attempt
    # past the run's linger: as an operator would, send again when it is due.
    for _ in range(3):
        if summary.state != "waiting":
            break
        clock.set(summary.next_retry)
        summary = send()

    assert {e: handler.count(e) for e in emails} == {e: 1 for e in emails}
    assert handler.drops > 0 and opened > 3
    assert summary.state == "finished"
    deferred_once = [d for d in rows(runtime, issue_id).values() if d.attempts > 1]
    assert len(deferred_once) >= len(handler.defer_first)


def test_550_5_1_1_bounces_and_suppresses(
    runtime: Runtime, make_list: Callable[..., str], picky_server: tuple[str, PickyHandler]
) -> None:
    url, handler = picky_server
    make_list()
    for email in ("good@example.org", "gone@example.org"):
        subscribe(runtime, email)
    handler.reject = {"gone@example.org"}
    issue_id = approved_issue(runtime)

    summary = run(runtime, issue_id, pool=SMTPPool(url, concurrency=1, rate=1000))

    assert summary.counts == {"sent": 1, "bounced": 1}  # type: ignore[attr-defined]
    digest = address_hmac(SECRET, "gone@example.org")
    with runtime.sessions() as session:
        assert is_suppressed(session, digest, "cyber-news")
        kinds = [(e.kind, e.method) for e in session.scalars(select(ConsentEvent))]
    assert ("suppressed", "bounce") in kinds


def test_deferred_copies_keep_the_issue_from_being_finished(
    runtime: Runtime,
    make_list: Callable[..., str],
    picky_server: tuple[str, PickyHandler],
    clock: object,
) -> None:
    url, handler = picky_server
    make_list()
    subscribe(runtime, "ok@example.org")
    subscribe(runtime, "later@example.org")
    handler.defer_first = {"later@example.org"}
    issue_id = approved_issue(runtime)
    runtime.settings.retry_linger = 0  # do not wait for the retry in this run

    first = run(runtime, issue_id, pool=SMTPPool(url, concurrency=1, rate=1000))

    assert first.state == "waiting"  # type: ignore[attr-defined]
    assert first.counts == {"sent": 1, "deferred": 1}  # type: ignore[attr-defined]
    with runtime.sessions() as session:
        assert session.get(Issue, issue_id).status == IssueStatus.SENDING  # type: ignore[union-attr]
    clock.advance(minutes=6)  # type: ignore[attr-defined]
    second = run(runtime, issue_id, pool=SMTPPool(url, concurrency=1, rate=1000))
    assert second.state == "finished"  # type: ignore[attr-defined]
    assert handler.count("later@example.org") == 1


def test_deferral_past_the_maximum_age_fails(
    runtime: Runtime,
    make_list: Callable[..., str],
    picky_server: tuple[str, PickyHandler],
    clock: object,
) -> None:
    url, handler = picky_server
    make_list()
    subscribe(runtime, "never@example.org")
    handler.defer_always = {"never@example.org"}
    issue_id = approved_issue(runtime)
    runtime.settings.retry_linger = 10 * 3600

    summary = run(
        runtime,
        issue_id,
        pool=SMTPPool(url, concurrency=1, rate=1000),
        sleep=advancing_sleep(clock),
    )  # type: ignore[arg-type]

    assert summary.counts == {"failed": 1}  # type: ignore[attr-defined]
    row = next(iter(rows(runtime, issue_id).values()))
    assert row.smtp_reply.startswith("gave up after 48 h") and row.attempts > 5


def test_the_campaign_pauses_when_most_attempts_fail(
    runtime: Runtime, make_list: Callable[..., str], picky_server: tuple[str, PickyHandler]
) -> None:
    url, handler = picky_server
    make_list()
    emails = [f"x{i:02d}@example.org" for i in range(60)]
    for email in emails:
        subscribe(runtime, email)
    handler.defer_always = set(emails)
    issue_id = approved_issue(runtime)

    summary = run(runtime, issue_id, pool=SMTPPool(url, concurrency=2, rate=1000))

    assert summary.state == "paused"  # type: ignore[attr-defined]
    assert "paused: 100% of the last 50 attempts failed" in summary.note  # type: ignore[attr-defined]
    with runtime.sessions() as session:
        campaign = session.get(Campaign, issue_id)
        assert campaign is not None and campaign.state == "paused"
    assert sum(summary.counts.values()) == 60  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_rate_limit_holds_within_ten_percent(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    import time

    make_list()
    for i in range(130):
        subscribe(runtime, f"rate{i:03d}@example.org")
    issue_id = approved_issue(runtime)
    stamps: list[float] = []
    handler = smtp_server.handler
    original = handler.handle_DATA

    async def stamped(server: object, session: object, envelope: object) -> str:
        stamps.append(time.monotonic())
        return await original(server, session, envelope)

    handler.handle_DATA = stamped  # type: ignore[method-assign]
    run(runtime, issue_id, pool=SMTPPool(smtp_server.url, concurrency=4, rate=50))

    assert len(stamps) == 130
    measured = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 45 <= measured <= 55, measured


def _plant_in_flight(runtime: Runtime, issue_id: int, email: str) -> None:
    """A row left in `sending`, as a SIGKILL during its SMTP transaction leaves it."""
    from sqlalchemy import insert

    from consent.models import Subscriber

    with runtime.sessions.begin() as session:
        subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == email))
        now = runtime.clock.now()
        session.execute(
            insert(Delivery).values(
                issue_id=issue_id,
                subscriber_id=subscriber_id,
                status="sending",
                attempts=1,
                queued_at=now,
                first_attempt_at=now,
                last_attempt_at=now,
                smtp_reply="",
            )
        )


@pytest.mark.parametrize("resend", [False, True])
def test_rows_left_sending_become_uncertain_and_are_resent_only_on_request(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer, resend: bool
) -> None:
    make_list()
    subscribe(runtime, "inflight@example.org")
    subscribe(runtime, "owed@example.org")
    issue_id = approved_issue(runtime)
    _plant_in_flight(runtime, issue_id, "inflight@example.org")
    smtp_server.received.clear()

    summary = run(runtime, issue_id, resend_uncertain=resend)

    assert summary.uncertain_found == 1  # type: ignore[attr-defined]
    assert len(smtp_server.to("owed@example.org")) == 1
    assert len(smtp_server.to("inflight@example.org")) == (1 if resend else 0)
    expected = {"sent": 2} if resend else {"sent": 1, "uncertain": 1}
    assert summary.counts == expected  # type: ignore[attr-defined]
    assert summary.state == "finished"  # type: ignore[attr-defined]
