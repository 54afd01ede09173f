"""Counting what readers found useful without tracking anyone: the redirect, the counters,
and an issue's figures checked against the delivery and consent ledgers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import httpx
import pytest
from click.testing import Result
from itsdangerous import URLSafeSerializer
from sqlalchemy import inspect, select
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.clicks.models import ClickCount
from mailer.clicks.stats import complaint_warning
from mailer.content import links
from tests.archive_fixtures import INTRO, add_stories, approve, every_row, send, story, switch
from tests.attack_fixtures import link_to
from tests.bounces.test_bounces import SAMPLES, _quoting
from tests.conftest import SECRET, SMTPServer
from tests.consent_fixtures import cli_fixture  # noqa: F401  (the cli fixture)
from tests.delivery_fixtures import subscribe
from tests.helpers import parts

REDIRECT = re.compile(r"https://news\.example\.org/r/[A-Za-z0-9_.\-]+")
AGENT = "Mozilla/5.0 (X11; ClickTestBrowser/3.2)"
READER_IP = "198.51.100.23"  # the clicking reader's address: seen nowhere else in the test


def counts(runtime: Runtime) -> dict[tuple[str, str], int]:
    with runtime.sessions() as session:
        return {(c.url, c.day.isoformat()): c.clicks for c in session.scalars(select(ClickCount))}


def redirects(message: EmailMessage) -> tuple[list[str], list[str]]:
    text, html = parts(message)
    return REDIRECT.findall(html.replace("&amp;", "&")), REDIRECT.findall(text)


def targets(message: EmailMessage) -> dict[str, str]:
    """Each counted link of a mail's HTML part, by the target its token signs."""
    return {links.read_token(SECRET, u.rsplit("/", 1)[1]).url: u for u in redirects(message)[0]}


def follow(client: TestClient, url: str, method: str = "GET") -> httpx.Response:
    path = url.removeprefix("https://news.example.org")
    return client.request(
        method,
        path,
        follow_redirects=False,
        headers={"User-Agent": AGENT, "Cookie": "tracker=cookie-value-42"},
    )


@pytest.fixture
def reader(runtime: Runtime) -> Iterator[TestClient]:
    """A browser at an address that appears nowhere else in the test."""
    from mailer.web.app import create_app

    with TestClient(
        create_app(runtime), base_url="https://news.example.org", client=(READER_IP, 41000)
    ) as browser:
        yield browser


def test_counted_links_are_one_for_all_readers_redirect_and_count_per_link_and_day_only(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    clock: FrozenClock,
    reader: TestClient,
) -> None:
    client = reader
    make_list()
    subscribe(runtime, "ada@example.org", "Ada Lovelace")
    subscribe(runtime, "grace@example.org", "Grace Hopper")
    add_stories(runtime, 1, 2)
    switch(runtime, count_clicks=True)
    issue_id = approve(runtime)
    smtp_server.received.clear()
    send(runtime, issue_id)
    ada = smtp_server.to("ada@example.org")[0].message
    grace = smtp_server.to("grace@example.org")[0].message

    ada_html, ada_text = redirects(ada)
    assert set(ada_html) == set(redirects(grace)[0])  # compiled once: no reader in any link
    assert len(set(ada_html)) == 5  # the intro's link, and each story's link and "details"
    assert set(ada_text) <= set(ada_html) and ada_text
    text, html = parts(ada)
    assert story(1)["link"] not in html.replace("&amp;", "&") and story(1)["link"] not in text
    for part in (text, html):
        assert "counted per link and per day, for all readers together" in " ".join(part.split())
    assert "<img" not in html  # no open pixel, ever
    target = targets(ada)

    first = follow(client, target[story(1)["link"]])
    assert first.status_code == 302
    assert first.headers["location"] == story(1)["link"]
    assert "set-cookie" not in first.headers
    assert first.headers["cache-control"] == "no-store"
    follow(client, target[story(1)["link"]])
    follow(client, target[story(2)["more"]])
    assert follow(client, target[story(2)["more"]], "HEAD").status_code == 302
    clock.advance(days=1)
    follow(client, target[story(1)["link"]])
    # an editor checking the preview's and the test copy's links counts nothing
    preview = REDIRECT.findall(runtime.preview(issue_id).html.replace("&amp;", "&"))
    assert preview and not set(preview) & set(ada_html)
    assert follow(client, preview[0]).status_code == 302

    assert counts(runtime) == {
        (story(1)["link"], "2026-01-05"): 2,
        (story(2)["more"], "2026-01-05"): 1,
        (story(1)["link"], "2026-01-06"): 1,
    }
    stored = every_row(runtime)
    for personal in (READER_IP, "198.51.100.0", AGENT, "ClickTestBrowser", "cookie-value-42"):
        assert personal not in stored, personal
    columns = {c["name"] for c in inspect(runtime.engine).get_columns("click_counts")}
    assert columns == {"id", "issue_id", "link_key", "url", "day", "clicks"}

    switch(runtime, count_clicks=False)  # counting stops at once; the links keep working
    assert follow(client, target[story(1)["link"]]).status_code == 302
    assert sum(counts(runtime).values()) == 4


def test_a_broken_or_tampered_token_shows_the_error_page_and_leads_nowhere(
    runtime: Runtime, make_list: Callable[..., str], client: TestClient
) -> None:
    make_list()
    add_stories(runtime, 1)
    switch(runtime, count_clicks=True)
    issue_id = approve(runtime)
    genuine = links.make_token(SECRET, issue_id, story(1)["link"])
    payload, signature = genuine.split(".")
    evil = URLSafeSerializer(SECRET, salt=links.SALT).dumps([issue_id, "https://evil.example/"])
    attempts = [
        payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature,  # edited payload
        evil.split(".")[0] + "." + signature,  # another target under the genuine signature
        links.make_token("not-our-secret-0123456789abcdef", issue_id, "https://evil.example/"),
        URLSafeSerializer(SECRET, salt=links.SALT).dumps([issue_id, "javascript:alert(1)"]),
        genuine[:-3],
        "not-a-token",
        "A" * 5000,
    ]
    for token in attempts:
        answer = client.get(f"/r/{token}", follow_redirects=False)
        assert answer.status_code == 400, token
        assert "location" not in answer.headers
        assert "evil.example" not in answer.text and "javascript" not in answer.text
        assert story(1)["link"] not in answer.text
        assert "This link is not valid" in answer.text
    assert counts(runtime) == {}
    assert (
        client.get(f"/r/{genuine}", follow_redirects=False).headers["location"] == story(1)["link"]
    )


def test_clicks_are_off_by_default_and_the_form_says_what_is_counted(
    runtime: Runtime,
    make_list: Callable[..., str],
    client: TestClient,
    cli: Callable[..., Result],
) -> None:
    make_list()
    add_stories(runtime, 1)
    issue_id = approve(runtime)
    assert not REDIRECT.findall(runtime.preview(issue_id).html)
    assert story(1)["link"].replace("&", "&amp;") in runtime.preview(issue_id).html
    form = client.get("/subscribe/cyber-news").text
    assert "we do not record whether you open a mail or which links you click" in form

    switched = cli("lists", "edit", "cyber-news", "--clicks", "on")
    assert switched.exit_code == 0 and "clicks counted in aggregate" in switched.output
    form = client.get("/subscribe/cyber-news").text
    assert "per link and per day, for all readers together: never who clicked" in form
    # approval froze the issue: it stays as it was until reopened and approved again
    assert not REDIRECT.findall(runtime.preview(issue_id).html)
    stats = cli("issues", "stats", str(issue_id))
    assert stats.exit_code == 0 and "clicks: not counted for this issue" in stats.output


def test_stats_match_the_delivery_ledger_and_the_consent_ledger(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    clock: FrozenClock,
    cli: Callable[..., Result],
) -> None:
    make_list()
    readers = ["ada@example.org", "margaret@example.net", "barbara@example.net"]
    readers += ["linus@example.com", "hedy@example.com"]
    for email in readers:
        subscribe(runtime, email)
    add_stories(runtime, 1)
    switch(runtime, count_clicks=True)
    first = approve(runtime)
    smtp_server.received.clear()
    send(runtime, first)
    got = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    processor = runtime.bounce_processor()
    bounce = _quoting(
        (SAMPLES / "exim_failed.eml").read_bytes(), got["margaret@example.net"]["Message-ID"]
    )
    assert processor.handle(bounce).action == "suppressed"  # a hard bounce, after the send
    complaint = _quoting(
        (SAMPLES / "arf_complaint.eml").read_bytes(), got["barbara@example.net"]["Message-ID"]
    )
    assert processor.handle(complaint).action == "suppressed"
    one_click = client.post(
        link_to(got["ada@example.org"], "unsubscribe"), data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    follow(client, targets(got["hedy@example.com"])[story(1)["link"]])

    clock.advance(days=7)
    add_stories(runtime, 2)
    second = approve(runtime, intro=INTRO)
    smtp_server.received.clear()
    send(runtime, second)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "hedy@example.com",
        "linus@example.com",
    ]
    linus = smtp_server.to("linus@example.com")[0].message
    left = client.post(link_to(linus, "unsubscribe"), data={})  # a POST without the body: "link"
    assert left.status_code == 200

    shown = cli("issues", "stats", str(first), "--json")
    assert shown.exit_code == 0, shown.output
    one = json.loads(shown.stdout)
    two = json.loads(cli("issues", "stats", str(second), "--json").stdout)

    assert (one["copies_sent"], one["bounces"], one["complaints"]) == (5, 1, 1)
    assert (one["unsubscribes"], one["unsubscribes_by_method"]) == (1, {"one-click": 1})
    assert one["complaint_rate"] == 0.2 and "Gmail's 0.3% line" in one["complaint_warning"]
    assert one["deliveries"] == {"sent": 4, "bounced": 1}
    assert [(c["url"], c["clicks"]) for c in one["clicks"] if c["clicks"]] == [
        (story(1)["link"], 1)
    ]
    assert (two["copies_sent"], two["bounces"], two["complaints"]) == (2, 0, 0)
    assert (two["unsubscribes"], two["unsubscribes_by_method"]) == (1, {"link": 1})
    assert two["complaint_rate"] == 0 and two["complaint_warning"] == ""
    # the same figures, counted from the ledgers themselves
    from tests.consent_fixtures import sql

    [(sent,)] = sql(runtime, "SELECT COUNT(*) FROM deliveries WHERE sent_at IS NOT NULL")
    [(bounced,)] = sql(runtime, "SELECT COUNT(*) FROM deliveries WHERE status = 'bounced'")
    assert (sent, bounced) == (one["copies_sent"] + two["copies_sent"], one["bounces"])
    events = sql(
        runtime,
        "SELECT kind, method FROM consent_events WHERE list_slug = 'cyber-news'"
        " AND kind IN ('withdrawn', 'suppressed')",
    )
    assert sorted(events) == sorted(
        [("withdrawn", "one-click"), ("withdrawn", "link"), ("suppressed", "bounce")]
        + [("suppressed", "complaint")]
    )
    assert one["unsubscribes"] + two["unsubscribes"] == sum(k == "withdrawn" for k, _ in events)
    assert one["complaints"] == sum(m == "complaint" for _, m in events)
    text = cli("issues", "stats", str(first)).output
    assert "complaints: 1 (rate 20.00%; Gmail's line: 0.3%) WARNING" in " ".join(text.split())
    assert cli("issues", "stats", "999").exit_code == 2


def test_the_complaint_rate_warns_above_a_tenth_of_a_percent() -> None:
    assert complaint_warning(None) == complaint_warning(0.0) == complaint_warning(0.001) == ""
    assert "stay below" in complaint_warning(0.0015)
    assert "0.3% line" in complaint_warning(0.003)
