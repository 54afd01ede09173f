"""One owner per campaign: runs told apart by a random id, claims that expire by heartbeat,
and a service stop that pauses an API-started run cleanly."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.delivery import campaigns
from mailer.delivery.campaigns import HEARTBEAT_STALE, CampaignBusy
from mailer.delivery.models import Campaign, Delivery
from mailer.service.lifecycle import Service
from mailer.service.scheduler import Scheduler
from mailer.web.app import create_app
from tests.conftest import SMTPServer
from tests.delivery_fixtures import approved_issue, subscribe

AUTH = {"Authorization": "Bearer admin-token"}


def slow_relay(smtp_server: SMTPServer, seconds: float = 0.02) -> None:
    """The relay keeps each copy, then waits a little before its 250 (a campaign in flight)."""
    record = smtp_server.handler.handle_DATA

    async def slow(server: object, session: object, envelope: object) -> str:
        answer = await record(server, session, envelope)
        await asyncio.sleep(seconds)
        return answer

    smtp_server.handler.handle_DATA = slow  # type: ignore[method-assign]


def copies(smtp_server: SMTPServer) -> Counter[str]:
    return Counter(r for m in smtp_server.received for r in m.rcpt_tos)


def statuses(runtime: Runtime, issue_id: int) -> Counter[str]:
    with runtime.sessions() as session:
        return Counter(
            str(s)
            for s in session.scalars(select(Delivery.status).where(Delivery.issue_id == issue_id))
        )


@pytest.fixture
def two_connections(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    rt = Runtime.build(settings.model_copy(update={"concurrency": 2}), clock=clock)
    try:
        yield rt
    finally:
        rt.close()


def test_two_runs_in_one_process_are_told_apart(
    two_connections: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    runtime = two_connections
    make_list()
    readers = [f"twice{i:02d}@example.org" for i in range(20)]
    for reader in readers:
        subscribe(runtime, reader)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    slow_relay(smtp_server)

    async def both() -> tuple[object, BaseException | None, str, str]:
        first = runtime.campaign(issue_id)  # two runners, as two edges once made them
        second = runtime.campaign(issue_id)
        running = asyncio.create_task(first.run())
        while len(smtp_server.received) < 3:
            await asyncio.sleep(0.01)
        try:
            await second.run()
            refused = None
        except CampaignBusy as exc:
            refused = exc
        return await running, refused, first.runner_id, second.runner_id

    summary, refused, first_id, second_id = asyncio.run(both())

    assert first_id != second_id  # same host, same pid: still two claimants
    assert isinstance(refused, CampaignBusy) and first_id in str(refused)
    assert summary.state == "finished"  # type: ignore[attr-defined]
    assert copies(smtp_server) == Counter(readers)  # exactly one copy each


def test_a_stale_claim_expires_by_heartbeat_on_the_injected_clock(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    make_list()
    readers = [f"stale{i}@example.org" for i in range(4)]
    for reader in readers:
        subscribe(runtime, reader)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    with runtime.sessions.begin() as session:  # a run on this very host and pid, then gone
        issue = campaigns.sendable_issue(session, issue_id)
        campaigns.claim(session, clock, issue, campaigns.new_runner_id())

    clock.advance(HEARTBEAT_STALE - timedelta(seconds=1))
    with pytest.raises(CampaignBusy, match="claim expires at"):
        asyncio.run(runtime.campaign(issue_id).run())
    assert smtp_server.received == []

    clock.advance(timedelta(seconds=2))
    summary = asyncio.run(runtime.campaign(issue_id).run())

    assert summary.state == "finished"
    assert copies(smtp_server) == Counter(readers)


def test_a_run_whose_claim_was_taken_over_neither_concludes_nor_beats(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str]
) -> None:
    make_list()
    subscribe(runtime, "owner@example.org")
    issue_id = approved_issue(runtime)
    first, second = campaigns.new_runner_id(), campaigns.new_runner_id()
    with runtime.sessions.begin() as session:
        campaigns.claim(session, clock, campaigns.sendable_issue(session, issue_id), first)
    clock.advance(HEARTBEAT_STALE)
    with runtime.sessions.begin() as session:
        campaigns.claim(session, clock, campaigns.sendable_issue(session, issue_id), second)
    with runtime.sessions.begin() as session:
        assert not campaigns.heartbeat(session, issue_id, first, clock.now())
        assert not campaigns.conclude(session, clock, issue_id, first, "finished", "")
        assert campaigns.heartbeat(session, issue_id, second, clock.now())
    with runtime.sessions() as session:
        campaign = session.get(Campaign, issue_id)
        assert campaign is not None
        assert (campaign.state, campaign.runner) == ("running", second)


def test_service_stop_pauses_an_api_started_run_and_the_ledger_is_consistent(
    two_connections: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    runtime = two_connections
    make_list()
    readers = [f"api{i:02d}@example.org" for i in range(40)]
    for reader in readers:
        subscribe(runtime, reader)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    slow_relay(smtp_server)
    # The service as `mailer serve` runs it: its scheduler in the web app's loop.
    service = Service(
        runtime, Scheduler(tick=runtime.schedules.tick, tick_every=timedelta(hours=1))
    )
    app = create_app(runtime, service)

    with TestClient(app, base_url="https://news.example.org") as client:
        started = client.post(f"/api/issues/{issue_id}/send", json={}, headers=AUTH)
        assert started.status_code == 202, started.text
        again = client.post(f"/api/issues/{issue_id}/send", json={}, headers=AUTH)
        assert again.status_code == 409 and "being sent" in again.json()["detail"]
        deadline = time.monotonic() + 20
        while len(smtp_server.received) < 5:
            assert time.monotonic() < deadline, "the send did not start"
            time.sleep(0.01)
        assert client.get(f"/api/issues/{issue_id}/delivery", headers=AUTH).json()["running"]
        # Leaving the client is what uvicorn does on SIGTERM: the service stops.

    delivered = copies(smtp_server)
    assert 5 <= sum(delivered.values()) < len(readers)  # stopped mid-campaign
    assert max(delivered.values()) == 1
    at_stop = statuses(runtime, issue_id)
    assert at_stop["sending"] == 0  # no row left half-done
    assert at_stop["sent"] == sum(delivered.values())  # every accepted copy recorded
    with runtime.sessions() as session:
        campaign = session.get(Campaign, issue_id)
        assert campaign is not None and campaign.state == "paused"
        assert campaign.note == "the service is shutting down"
        assert campaign.runner == ""

    summary = asyncio.run(runtime.campaigns.run(issue_id))

    assert summary.state == "finished" and summary.uncertain_found == 0
    assert copies(smtp_server) == Counter(readers)


def test_a_run_that_ends_while_its_view_is_read_is_shown_running_not_ended_unfinished(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    """The API's progress view: the run ends (writes `finished`, then marks itself done)
    between the view's database read and its look at the run. It must not answer "not
    running" with the state read before the end ("running"), or a client polling until
    the run stops reads an unfinished campaign (seen in CI on PostgreSQL)."""
    make_list()
    for i in range(3):
        subscribe(runtime, f"view{i}@example.org")
    issue_id = approved_issue(runtime)
    service = runtime.campaigns
    read = service.status

    def read_then_the_run_ends(issue: int) -> campaigns.Summary:
        summary = read(issue)
        live = service.runs[issue]
        deadline = time.monotonic() + 30
        while not live.done and time.monotonic() < deadline:
            time.sleep(0.01)
        return summary

    async def run() -> tuple[bool, str, bool, str, dict[str, int]]:
        live = service.start(issue_id)
        service.status = read_then_the_run_ends  # type: ignore[method-assign]
        try:
            during = await service.view(issue_id)
        finally:
            service.status = read  # type: ignore[method-assign]
        assert live.task is not None
        await live.task
        after = await service.view(issue_id)
        return (
            during.running,
            during.summary.state,
            after.running,
            after.summary.state,
            after.summary.counts,
        )

    running, _, running_after, state_after, counts = asyncio.run(run())
    assert running  # seen live before the read: the next look shows the end
    assert (running_after, state_after, counts) == (False, "finished", {"sent": 3})
