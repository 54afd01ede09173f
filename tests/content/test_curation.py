"""Curating issues: draft, include/exclude, move, section, note, highlight, approve, reopen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from consent.addresses import InvalidInput
from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.content import curation
from mailer.content.curation import (
    EntryChanges,
    IssueChanges,
    IssueFrozen,
    UnknownEntry,
    UnknownIssue,
)
from mailer.content.feeds import add_feed, fetch_feeds
from mailer.content.ical import import_calendar
from mailer.content.issue_content import IssueContent
from mailer.content.models import FeedItem, IssueStatus
from mailer.content.newsletter import CompiledIssue
from mailer.content.views import issue_detail
from tests.content_fixtures import FEEDS, ICS


def load_content(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        add_feed(
            session, runtime.clock, "cyber-news", str(FEEDS / "rss20.xml"), section="Cluster news"
        )
        add_feed(session, runtime.clock, "cyber-news", str(FEEDS / "atom.xml"), name="Radar")
        import_calendar(
            session,
            runtime.clock,
            "cyber-news",
            (ICS / "webinars.ics").read_bytes(),
            "webinars.ics",
        )
    asyncio.run(fetch_feeds(runtime.sessions, runtime.clock, "cyber-news"))


def draft(runtime: Runtime) -> int:
    with runtime.sessions.begin() as session:
        return curation.draft_issue(session, runtime.clock, "cyber-news").id


def detail(runtime: Runtime, issue_id: int) -> dict:  # type: ignore[type-arg]
    with runtime.sessions() as session:
        return issue_detail(curation.get_issue(session, issue_id))


def edit(runtime: Runtime, issue_id: int, ref: int, **changes: object) -> None:
    with runtime.sessions.begin() as session:
        curation.update_entry(session, runtime.clock, issue_id, ref, EntryChanges(**changes))


def test_draft_gathers_items_and_events(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    load_content(runtime)
    record = detail(runtime, draft(runtime))
    assert record["number"] == 1 and record["status"] == "draft"
    assert record["subject"] == "Cyberwatching.eu Cluster News #1 – January 2026"
    news = [e for e in record["entries"] if e["kind"] == "item"]
    events = [e for e in record["entries"] if e["kind"] == "event"]
    assert [e["title"] for e in news] == [  # newest first
        "Privacy-by-design toolkit reaches version 2",
        "DSP Valley opens a cybersecurity working group for SMEs",
        "Call for pilots: secure IoT gateways",
        "Estonian ICT Cluster & partners publish a cyber-hygiene checklist",
    ]
    assert news[1]["section"] == "Cluster news" and news[0]["section"] == "News"
    assert news[0]["source"] == "Radar"
    # The weekly series: its first two dates included, the rest left out for the editor.
    series = [e for e in events if e["title"].startswith("Cluster Hour")]
    assert [e["included"] for e in series[:3]] == [True, True, False]
    assert all(e["included"] for e in events if not e["title"].startswith("Cluster Hour"))


def test_next_draft_only_has_what_is_new(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str]
) -> None:
    make_list()
    load_content(runtime)
    first = draft(runtime)
    with runtime.sessions.begin() as session:
        curation.approve_issue(session, clock, runtime.renderer, first)
    clock.advance(days=1)
    with runtime.sessions.begin() as session:
        add_feed(session, clock, "cyber-news", str(FEEDS / "rss10.rdf"))
    asyncio.run(fetch_feeds(runtime.sessions, clock, "cyber-news"))
    second = detail(runtime, draft(runtime))
    assert second["number"] == 2
    assert [e["title"] for e in second["entries"] if e["kind"] == "item"] == [
        "Regional Ecosystem Scoreboard adds digital-security indicators"
    ]


def test_curation_operations(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    load_content(runtime)
    issue_id = draft(runtime)
    edit(runtime, issue_id, 3, included=False)
    edit(runtime, issue_id, 4, position=1)
    edit(runtime, issue_id, 2, section="Policy", note="Worth a read for cluster managers.")
    edit(runtime, issue_id, 1, highlight=True)
    edit(runtime, issue_id, 2, highlight=True)  # one highlight only: this one wins
    with runtime.sessions.begin() as session:
        curation.update_issue(
            session,
            runtime.clock,
            issue_id,
            IssueChanges(
                subject="Clusters in January",
                preheader="Secure by design, and webinars",
                introduction="Hello **clusters**.",
                highlight_label="Cluster of the month",
            ),
        )
    record = detail(runtime, issue_id)
    by_ref = {e["ref"]: e for e in record["entries"]}
    assert by_ref[3]["included"] is False
    assert [e["ref"] for e in record["entries"] if e["kind"] == "item"] == [4, 1, 2, 3]
    assert by_ref[2]["section"] == "Policy" and by_ref[2]["note"].startswith("Worth")
    assert [e["ref"] for e in record["entries"] if e["highlight"]] == [2]
    assert record["subject"] == "Clusters in January"

    preview_text = runtime.preview(issue_id).text
    assert "CLUSTER OF THE MONTH\n" in preview_text
    assert "Editor's note: Worth a read" in preview_text
    assert "Call for pilots" not in preview_text  # excluded
    assert preview_text.index("Estonian ICT") < preview_text.index("Privacy-by-design")


@pytest.mark.parametrize(
    ("ref", "changes", "problem"),
    [
        (99, {"included": True}, UnknownEntry),
        (5, {"position": 1}, InvalidInput),  # an event cannot move
        (5, {"section": "X"}, InvalidInput),
        (1, {"position": 0}, InvalidInput),
        (1, {"section": "two\nlines"}, InvalidInput),
    ],
)
def test_bad_edits(
    runtime: Runtime, make_list: Callable[..., str], ref: int, changes: dict, problem: type
) -> None:  # type: ignore[type-arg]
    make_list()
    load_content(runtime)
    issue_id = draft(runtime)
    with pytest.raises(problem):
        edit(runtime, issue_id, ref, **changes)


def test_approve_freezes_then_reopen(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str]
) -> None:
    make_list()
    load_content(runtime)
    issue_id = draft(runtime)
    with runtime.sessions() as session:
        assert curation.get_issue(session, issue_id).compiled is None  # nothing to send yet
    with runtime.sessions.begin() as session:
        curation.approve_issue(session, clock, runtime.renderer, issue_id)
    with runtime.sessions() as session:
        issue = curation.get_issue(session, issue_id)
        assert issue.status == IssueStatus.APPROVED and issue.approved_at == clock.now()
        assert issue.content is not None and issue.compiled is not None
        frozen = CompiledIssue.from_record(issue.compiled)  # what a campaign sends
    assert IssueContent.from_record(issue.content).subject == frozen.subject
    with runtime.sessions.begin() as session, pytest.raises(IssueFrozen, match="reopen"):
        curation.update_entry(session, clock, issue_id, 1, EntryChanges(included=False))
    with runtime.sessions.begin() as session, pytest.raises(IssueFrozen):
        curation.update_issue(session, clock, issue_id, IssueChanges(subject="New"))

    # The feed changes after approval: the approved issue does not.
    with runtime.sessions.begin() as session:
        item = session.scalars(select(FeedItem).order_by(FeedItem.id)).first()
        assert item is not None
        item.title = "Changed afterwards"
    assert "Changed afterwards" not in runtime.preview(issue_id).html

    with runtime.sessions.begin() as session:
        curation.reopen_issue(session, clock, issue_id)
        curation.update_issue(session, clock, issue_id, IssueChanges(subject="New"))
        assert curation.get_issue(session, issue_id).compiled is None
    assert "Changed afterwards" in runtime.preview(issue_id).html

    # Sending: no reopening any more; delivery marks it sent.
    with runtime.sessions.begin() as session:
        curation.approve_issue(session, clock, runtime.renderer, issue_id)
        curation.start_sending(session, clock, issue_id)
    with runtime.sessions.begin() as session, pytest.raises(IssueFrozen, match="sending"):
        curation.reopen_issue(session, clock, issue_id)
    clock.advance(minutes=5)
    with runtime.sessions.begin() as session:
        sent = curation.mark_sent(session, clock, issue_id)
        assert sent.status == IssueStatus.SENT and sent.sent_at == clock.now()


def test_empty_issue_cannot_be_approved(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    issue_id = draft(runtime)
    with runtime.sessions.begin() as session, pytest.raises(InvalidInput, match="is empty"):
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue_id)


def test_unknown_issue(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    issue_id = draft(runtime)
    with runtime.sessions() as session:
        with pytest.raises(UnknownIssue):
            curation.get_issue(session, issue_id + 1)
        with pytest.raises(UnknownIssue):
            curation.get_issue(session, issue_id, "other-list")


def test_numbers_count_per_list(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str]
) -> None:
    make_list()
    make_list(slug="other-news", name="Other news")
    with runtime.sessions.begin() as session:
        a = curation.draft_issue(session, clock, "cyber-news")
        clock.advance(timedelta(minutes=1))
        b = curation.draft_issue(session, clock, "other-news")
        c = curation.draft_issue(session, clock, "cyber-news")
        assert [(i.id, i.number) for i in (a, b, c)] == [(a.id, 1), (b.id, 1), (c.id, 2)]
