"""Contributions from clusters: confirmed by their contact, defended against abuse,
moderated into the next draft, and their contact's address forgotten in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.content import curation
from mailer.contributions.mails import ConfirmContribution
from mailer.contributions.submission import Submission
from mailer.service import housekeeping
from tests.archive_fixtures import every_row
from tests.conftest import SMTPServer
from tests.consent_fixtures import cli_fixture, sql  # noqa: F401  (the cli fixture)
from tests.delivery_fixtures import subscribe
from tests.helpers import csrf_token, links, parts, path_of

CONTACT = "Press.Office@CyberWallonia.example.org"  # typed in mixed case
STORED = "press.office@cyberwallonia.example.org"
AUTH = {"Authorization": "Bearer admin-token"}


def news_form(form_page: str, **changes: str) -> dict[str, str]:
    values = {
        "csrf_token": csrf_token(form_page),
        "kind": "news",
        "title": "CyberWallonia opens its testing lab",
        "link": "https://cyberwallonia.example.org/lab?utm_source=newsletter",
        "summary": "The lab is open to SMEs of the region.\n\nVisits on Tuesdays.",
        "organisation": "CyberWallonia",
        "contact": CONTACT,
        "website": "",
    }
    values.update(changes)
    return values


def status_of(runtime: Runtime, contribution_id: int = 1) -> str:
    return runtime.contributions.show(contribution_id).status


def sent_in(runtime: Runtime, submission: Submission) -> int:
    """Send a contribution in and confirm it, as its contact would: its id."""
    [mail] = runtime.contributions.submit("cyber-news", submission)
    assert isinstance(mail, ConfirmContribution)
    view, _already = runtime.contributions.confirm(mail.token)
    return view.id


NEWS = Submission(
    kind="news",
    title="CyberWallonia opens its testing lab",
    organisation="CyberWallonia",
    contact=CONTACT,
    link="https://cyberwallonia.example.org/lab",
    summary="The lab is open to SMEs of the region.",
)
EVENT = Submission(
    kind="event",
    title="ECSO cluster meeting",
    organisation="ECSO",
    contact="events@ecso.example.org",
    start="2026-02-10T15:00",
    end="2026-02-10T16:30",
    timezone="Europe/Brussels",
    online=True,
    link="https://ecso.example.org/meeting",
)


@pytest.fixture
def elsewhere(runtime: Runtime) -> Iterator[TestClient]:
    """A second visitor, from another network."""
    from mailer.web.app import create_app

    with TestClient(
        create_app(runtime), base_url="https://news.example.org", client=("2001:db8:7:1::5", 4000)
    ) as browser:
        yield browser


def test_g1_a_contribution_is_invisible_until_its_contact_confirms_by_post(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    clock: FrozenClock,
    cli: Callable[..., Result],
) -> None:
    make_list()
    form = client.get("/contribute/cyber-news")
    assert form.status_code == 200
    assert "delete it 30 days after the decision" in form.text
    assert 'name="website"' in form.text  # the honeypot, hidden from people

    sent = client.post("/contribute/cyber-news", data=news_form(form.text))

    assert sent.status_code == 202 and "Check your inbox" in sent.text
    [mail] = smtp_server.received
    assert mail.rcpt_tos == [STORED]  # the envelope names the stored address, nothing else
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "CyberWallonia opens its testing lab" in parts(mail.message)[0]
    [confirm] = [path_of(u) for u in links(mail.message) if "/contribute/confirm/" in u]
    listed = json.loads(cli("contributions", "list", "--json").stdout)
    assert [(c["status"], c["contact"]) for c in listed] == [("unconfirmed", STORED)]
    assert listed[0]["link"] == "https://cyberwallonia.example.org/lab"  # tracking tag gone
    assert runtime.contributions.listing(status="pending") == []

    scanned = client.get(confirm)  # a mail gateway opens the link
    assert scanned.status_code == 200 and "Send it to the editors" in scanned.text
    assert status_of(runtime) == "unconfirmed"
    forged = client.post(confirm, data={"csrf_token": "x"})
    assert forged.status_code == 403 and status_of(runtime) == "unconfirmed"
    assert client.get(confirm[:-4] + "AAAA").status_code == 400

    done = client.post(confirm, data={"csrf_token": csrf_token(scanned.text)})

    assert done.status_code == 200 and "now with the editors" in done.text
    assert status_of(runtime) == "pending"
    again = client.post(confirm, data={"csrf_token": csrf_token(scanned.text)})
    assert "confirmed already" in again.text and status_of(runtime) == "pending"
    clock.advance(days=8)
    assert client.get(confirm).status_code == 410  # the link expires with MAILER_PENDING_TTL
    assert sql(runtime, "SELECT COUNT(*) FROM subscribers") == [(0,)]


def test_the_honeypot_the_limits_and_the_link_cap_refuse_and_summaries_are_sanitised(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    elsewhere: TestClient,
) -> None:
    make_list()
    page = client.get("/contribute/cyber-news").text

    bot = client.post("/contribute/cyber-news", data=news_form(page, website="http://spam"))
    assert bot.status_code == 400
    links_ = " ".join(f"https://x{i}.example.org/" for i in range(4))
    many = client.post("/contribute/cyber-news", data=news_form(page, summary=links_))
    assert many.status_code == 422 and "at most 3 link(s)" in many.text
    hostile = (
        "<p>Lab <script>alert(1)</script><b>open</b>"
        ' <a href="https://cwl.example.org/?utm_source=x&amp;id=3" onclick="x()">here</a>'
        '<img src="https://tracker.example/p.gif"></p>'
    )
    for _ in range(3):  # three from one address in a day, the limit
        ok = client.post("/contribute/cyber-news", data=news_form(page, summary=hostile))
        assert ok.status_code == 202
    assert client.post("/contribute/cyber-news", data=news_form(page)).status_code == 429
    assert len(smtp_server.received) == 3
    stored = runtime.contributions.show(1)
    assert stored.summary_html == (
        '<p>Lab <b>open</b> <a href="https://cwl.example.org/?id=3"'
        ' rel="noopener noreferrer nofollow">here</a></p>'
    )

    other = elsewhere.get("/contribute/cyber-news").text
    fourth = elsewhere.post("/contribute/cyber-news", data=news_form(other))
    assert fourth.status_code == 202  # answered alike: nothing stored, nothing sent
    assert len(runtime.contributions.listing()) == 3 and len(smtp_server.received) == 3
    fresh = elsewhere.post(
        "/contribute/cyber-news", data=news_form(other, contact="other@example.org")
    )
    assert fresh.status_code == 202 and len(smtp_server.received) == 4
    cross = elsewhere.post(
        "/contribute/cyber-news",
        data=news_form(other, contact="third@example.org"),
        headers={"Origin": "https://attacker.example"},
    )
    assert cross.status_code == 403
    bad_event = elsewhere.post(
        "/contribute/cyber-news",
        data=news_form(other, kind="event", start="2026-02-10T15:00", end="2026-02-10T14:00"),
    )
    assert bad_event.status_code == 422 and "end after it starts" in bad_event.text
    assert len(runtime.contributions.listing()) == 4
    assert client.get("/contribute/no-such-list").status_code == 404


def test_accepted_contributions_enter_the_next_draft_contributed_by_and_contacts_are_told(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    clock: FrozenClock,
    cli: Callable[..., Result],
) -> None:
    clock.set(datetime.now(UTC))  # the commands below run on the system clock
    make_list()
    news = sent_in(runtime, NEWS)
    day = (clock.now() + timedelta(days=20)).date().isoformat()
    event = sent_in(runtime, replace(EVENT, start=f"{day}T15:00", end=f"{day}T16:30"))
    off_topic = sent_in(runtime, Submission(**{**NEWS.__dict__, "title": "Buy our product"}))
    runtime.contributions.submit("cyber-news", NEWS)  # 4: never confirmed by its contact
    smtp_server.received.clear()
    pending = json.loads(cli("contributions", "list", "--status", "pending", "--json").stdout)
    assert [c["id"] for c in pending] == [news, event, off_topic]

    accepted = cli("contributions", "accept", str(news))
    assert accepted.exit_code == 0, accepted.output
    api = client.post(f"/api/contributions/{event}/accept", headers=AUTH)
    assert api.status_code == 200 and api.json()["status"] == "accepted"
    rejected = cli("contributions", "reject", str(off_topic), "--reason", "Not about clusters")
    assert rejected.exit_code == 0, rejected.output
    assert cli("contributions", "accept", str(news)).exit_code == 2  # decided already
    assert cli("contributions", "accept", "4").exit_code == 2  # not confirmed by its contact
    assert cli("contributions", "show", "99").exit_code == 2
    assert client.get("/api/contributions/99", headers=AUTH).status_code == 404

    told = {r.rcpt_tos[0]: parts(r.message)[0] for r in smtp_server.received}
    assert sorted(told) == ["events@ecso.example.org", STORED]  # the rejection: same contact
    assert len(smtp_server.to(STORED)) == 2
    texts = [parts(r.message)[0] for r in smtp_server.to(STORED)]
    assert any("accepted your contribution" in t for t in texts)
    assert any("did not accept" in t and "Not about clusters" in t for t in texts)

    clock.advance(minutes=5)
    with runtime.sessions.begin() as session:  # the next draft, on the test's clock
        issue_id = curation.draft_issue(session, runtime.clock, "cyber-news").id
    shown = runtime.preview(issue_id)
    for part in (shown.html, shown.text):
        assert "CyberWallonia opens its testing lab" in part
        assert "Contributed by CyberWallonia" in part
        assert "ECSO cluster meeting" in part and "Contributed by ECSO" in part
        assert "Buy our product" not in part
    assert "Online" in shown.text
    listed = client.get("/api/contributions?status=accepted", headers=AUTH).json()
    assert [c["id"] for c in listed] == [news, event]
    assert (
        client.get("/api/contributions", headers={"Authorization": "Bearer no"}).status_code == 401
    )


def test_the_contact_address_is_gone_after_the_retention_period_and_never_a_subscriber(
    runtime: Runtime,
    make_list: Callable[..., str],
    clock: FrozenClock,
    cli: Callable[..., Result],
) -> None:
    make_list()
    decided = sent_in(runtime, NEWS)
    runtime.contributions.accept(decided)
    runtime.contributions.submit("cyber-news", EVENT)  # its contact never confirms

    clock.advance(days=8)  # past MAILER_PENDING_TTL: the unconfirmed one is deleted whole
    done = asyncio.run(housekeeping.purge_contributions(runtime.contributions))
    assert (done.unconfirmed_deleted, done.contacts_emptied) == (1, 0)
    assert [c.id for c in runtime.contributions.listing()] == [decided]
    assert STORED in every_row(runtime)  # kept until the decision plus the retention period

    clock.advance(days=23)  # 31 days after the decision
    done = asyncio.run(housekeeping.purge_contributions(runtime.contributions))
    assert (done.unconfirmed_deleted, done.contacts_emptied) == (0, 1)
    stored = every_row(runtime)
    for gone in (STORED, "events@ecso.example.org", "cyberwallonia.example.org/lab" + "@"):
        assert gone not in stored
    assert "CyberWallonia opens its testing lab" in stored  # the news itself stays
    assert sql(runtime, "SELECT COUNT(*) FROM subscribers") == [(0,)]
    assert sql(runtime, "SELECT COUNT(*) FROM consent_events") == [(0,)]
    shown = cli("contributions", "show", str(decided))
    assert "contact address deleted" in shown.output
    assert cli("contributions", "purge").exit_code == 0
    assert clock.now() - runtime.contributions.show(decided).submitted_at > timedelta(days=30)


def test_a_subscribers_export_shows_what_they_sent_in_and_erasure_forgets_it(
    runtime: Runtime, make_list: Callable[..., str], cli: Callable[..., Result]
) -> None:
    make_list()
    subscribe(runtime, STORED, "Press Office")
    sent_in(runtime, NEWS)
    document = runtime.rights().export(email=STORED)
    assert [c["title"] for c in document["contributions"]] == [NEWS.title]
    runtime.rights().erase(Evidence("cli", "cli"), email=STORED)
    assert runtime.contributions.show(1).contact is None
    sent_in(runtime, EVENT)
    forgotten = cli("contributions", "forget", "events@ecso.example.org")
    assert forgotten.exit_code == 0 and "1 contributions" in forgotten.output
    assert runtime.contributions.show(2).contact is None
    assert cli("contributions", "forget", "not an address").exit_code == 2
