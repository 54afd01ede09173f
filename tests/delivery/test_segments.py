"""Sending to a segment and by topic, counted at a real SMTP server: a segmented send reaches
exactly segment ∩ active (confirmed, not suppressed); a reader with topics gets only theirs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from click.testing import Result
from starlette.testclient import TestClient

from consent.models import Status
from consent.preferences import subscribers
from consent.workflow import ConfirmationRequested, Evidence
from mailer.app.wiring import Runtime
from mailer.audience import segments, signup, topics
from mailer.audience.signup import Given
from mailer.content import curation, targets
from tests.conftest import SMTPServer
from tests.consent_fixtures import cli_fixture  # noqa: F401
from tests.content.test_curation import load_content
from tests.helpers import parts, path_of

FORM = Evidence(method="double-opt-in", source="form:/subscribe/cyber-news", ip="203.0.113.9")


def join(runtime: Runtime, email: str, given: Given, confirm: bool = True) -> None:
    announced = signup.request(
        runtime.consent, "cyber-news", email, "", FORM, given, consent_given=True
    )
    token = next(a.token for a in announced if isinstance(a, ConfirmationRequested))
    if confirm:
        signup.confirm(runtime.consent, token, FORM)


def ask_everything(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        topics.set_questions(session, "cyber-news", organisation=True, country=True, topics=True)
        topics.add_topic(session, "cyber-news", "news", "Cluster news", sections=["Cluster news"])
        topics.add_topic(session, "cyber-news", "events", "Events", sections=["Upcoming events"])


def approve(runtime: Runtime, segment: str | None = None) -> int:
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, "cyber-news")
        if segment:
            targets.target(session, issue, segment)
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue.id)
        return issue.id


def test_c7_a_segmented_send_reaches_exactly_the_segment_of_active_readers(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    cli: Callable[..., Result],
    client: TestClient,
) -> None:
    make_list()
    load_content(runtime)
    ask_everything(runtime)
    join(runtime, "ana@example.org", Given(country="Spain"))
    join(runtime, "bruno@example.org", Given(country="France"))
    join(runtime, "carla@example.org", Given(country="ES"), confirm=False)  # never confirms
    join(runtime, "dora@example.org", Given(country="es"))
    join(runtime, "emil@example.org", Given(country="Spain"))
    join(runtime, "fay@example.org", Given(organisation="Somewhere in Spain"))
    runtime.consent.unsubscribe_address("cyber-news", "dora@example.org", FORM)
    runtime.consent.suppress("emil@example.org", "*", "complaint", FORM)

    added = cli(
        "segments", "add", "spain", "--list", "cyber-news",
        "--filter", '{"field": "country", "op": "eq", "value": "Spain"}',
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "1 reader(s) of cyber-news would receive it now" in added.output
    # ana, dora, emil; carla's answers wait for her confirmation, so she matches nothing yet
    assert "3 match in any state" in added.output
    bad = cli(
        "segments",
        "add",
        "x",
        "--list",
        "cyber-news",
        "--filter",
        '{"and": [{"field": '
        '"country", "op": "eq", "value": "ES"}, {"field": "email", "op": "eq", "value": 1}]}',
    )
    assert bad.exit_code == 2 and '$.and[1].field: unknown field "email"' in bad.output

    issue_id = approve(runtime, "spain")
    with runtime.sessions.begin() as session:  # a later change of the segment is what counts
        segments.get_segment(session, "spain").filter = {
            "or": [
                {"field": "country", "op": "eq", "value": "Spain"},
                {"field": "organisation", "op": "contains", "value": "spain"},
            ]
        }
    summary = asyncio.run(runtime.campaign(issue_id).run())
    assert summary.state == "finished"
    received = sorted(r.rcpt_tos[0] for r in smtp_server.received)
    assert received == ["ana@example.org", "fay@example.org"]
    assert summary.counts == {"sent": 2}
    count = json.loads(cli("segments", "count", "spain", "--json").output)
    assert count == [{"segment": "spain", "list_slug": "cyber-news", "matching": 4,
                      "reachable": 2}]  # fmt: skip

    # Leaving from a segmented issue leaves the whole list, not just the segment.
    [mail] = smtp_server.to("ana@example.org")
    unsubscribe = mail.message["List-Unsubscribe"].strip("<>")
    left = client.post(path_of(unsubscribe), data={"List-Unsubscribe": "One-Click"})
    assert left.status_code == 200
    states = {r.email: r.status for r in subscribers(runtime.consent, "cyber-news")}
    assert states["ana@example.org"] == Status.UNSUBSCRIBED.value
    removed = cli("segments", "remove", "spain")
    assert removed.exit_code == 0


def test_a_reader_with_topics_gets_only_their_sections(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    make_list()
    load_content(runtime)
    ask_everything(runtime)
    join(runtime, "news.only@example.org", Given(topics=["news"]))
    join(runtime, "events.only@example.org", Given(topics=["events"]))
    join(runtime, "everything@example.org", Given(topics=[]))
    issue_id = approve(runtime)
    asyncio.run(runtime.campaign(issue_id).run())

    def shown(address: str) -> tuple[str, str]:
        [mail] = smtp_server.to(address)
        return parts(mail.message)

    cluster_story = "DSP Valley opens a cybersecurity working group for SMEs"
    general_story = "Privacy-by-design toolkit reaches version 2"  # "News": tied to no topic
    webinar = "Cluster Hour"
    text, html = shown("news.only@example.org")
    for part in (text, html):
        assert cluster_story in part and general_story in part and webinar not in part
    assert "CLUSTER NEWS" in text and "UPCOMING EVENTS" not in text
    text, html = shown("events.only@example.org")
    for part in (text, html):
        assert cluster_story not in part and general_story in part and webinar in part
    text, html = shown("everything@example.org")
    for part in (text, html):
        assert cluster_story in part and general_story in part and webinar in part
    for address in ("news.only@example.org", "events.only@example.org"):
        text, html = shown(address)
        assert "mailer-slot" not in text + html and "Unsubscribe" in text


def test_c7_a_queued_segmented_send_reaches_the_segment_with_each_readers_sections(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    cli: Callable[..., Result],
) -> None:
    """The same promise through the delivery workers (PostgreSQL): the rows the queue writes
    are segment ∩ active, and a worker's batch gives each reader their topics' sections."""
    if runtime.engine.dialect.name != "postgresql":
        assert cli("issues", "send", "1", "--queue").exit_code == 2  # workers need PostgreSQL
        return
    from mailer.delivery.batch import WorkerContext
    from mailer.delivery.queue import QUEUE, make_app
    from mailer.delivery.runner import make_pool

    make_list()
    load_content(runtime)
    ask_everything(runtime)
    join(runtime, "ana@example.org", Given(country="Spain", topics=["news"]))
    join(runtime, "bruno@example.org", Given(country="France", topics=["news"]))
    join(runtime, "carmen@example.org", Given(country="Spain", topics=["events"]))
    added = cli(
        "segments", "add", "spain", "--list", "cyber-news",
        "--filter", '{"field": "country", "op": "eq", "value": "Spain"}',
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    issue_id = approve(runtime, "spain")

    queued = cli("issues", "send", str(issue_id), "--queue")
    assert queued.exit_code == 0, queued.output
    settings = runtime.settings
    context = WorkerContext(
        runtime.engine, runtime.sessions, runtime.clock, settings, runtime.consent,
        make_pool(settings),
    )  # fmt: skip

    async def work() -> None:
        app = make_app(settings.database_url)
        async with app.open_async():
            await app.run_worker_async(
                queues=[QUEUE], wait=False, additional_context={"mailer": context},
                install_signal_handlers=False,
            )  # fmt: skip
        await context.pool.close()

    asyncio.run(work())
    assert sorted(a for r in smtp_server.received for a in r.rcpt_tos) == [
        "ana@example.org",
        "carmen@example.org",
    ]
    cluster_story = "DSP Valley opens a cybersecurity working group for SMEs"
    webinar = "Cluster Hour"
    [ana] = smtp_server.to("ana@example.org")
    text, _html = parts(ana.message)
    assert cluster_story in text and webinar not in text
    [carmen] = smtp_server.to("carmen@example.org")
    text, _html = parts(carmen.message)
    assert cluster_story not in text and webinar in text
