"""Rendering an issue: the required parts in HTML and text, compile once, safe personalisation."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy

import mjml
import pytest

from mailer.content.issue_content import Highlight, IssueContent, Section, markdown_html
from mailer.content.newsletter import CompiledIssue, compile_issue
from mailer.content.parse import parse
from mailer.mail.mjml_check import check_mjml
from mailer.mail.render import Renderer, TemplateError
from tests.content_fixtures import FEEDS, event, news, sample_content

UNSUBSCRIBE = "https://news.example.org/unsubscribe/tok.en?a=1&b=2"
PREFERENCES = "https://news.example.org/preferences/pref.tok"


@pytest.fixture(scope="module")
def compiled() -> CompiledIssue:
    return compile_issue(Renderer(), sample_content())


def test_html_has_every_required_part(compiled: CompiledIssue) -> None:
    html, _ = compiled.personalise("Ana", UNSUBSCRIBE, PREFERENCES)
    for part in (
        "Cyberwatching.eu Cluster News",  # the list's name
        "Issue 3 · 5 January 2026",  # number and date
        "The cluster of the month and the next webinars",  # preheader
        "Welcome to <strong>issue 3</strong>.",  # introduction
        "Cluster of the month",  # highlight label
        "Cluster story 1",  # the highlight
        "Cluster news",
        "Policy",  # sections
        "Upcoming events",
        "Webinar 100",
        "Tue 13 January 2026, 15:00–16:00 CET",
        "Sent by Cyberwatching.eu consortium",  # who sends it
        "because you subscribed to it",  # why the reader gets it
        "Unsubscribe",
        "Manage your preferences",
        "Hello Ana,",
    ):
        assert part in html, part
    assert 'href="https://news.example.org/unsubscribe/tok.en?a=1&amp;b=2"' in html
    assert f'href="{PREFERENCES}"' in html
    assert html.index("Cluster story 1") < html.index("Cluster story 2")  # highlight first
    assert html.index("Webinar 100") < html.index("Webinar 101") < html.index("Webinar 102")
    assert "@media" in html  # responsive: columns stack on phones


def test_text_is_written_not_stripped(compiled: CompiledIssue) -> None:
    _, text = compiled.personalise("", UNSUBSCRIBE, PREFERENCES)
    assert text.startswith("Cyberwatching.eu Cluster News\nIssue 3 · 5 January 2026\n")
    for part in (
        "Hello,\n",
        "CLUSTER OF THE MONTH",
        "CLUSTER NEWS",
        "UPCOMING EVENTS",
        "* Cluster story 2",
        "https://clusters.example.org/news/2?a=1&b=2",
        "When: Tue 13 January 2026, 15:00–16:00 CET",
        "Welcome to **issue 3**.",
        f"Unsubscribe (one click, no login): {UNSUBSCRIBE}",
        f"Preferences, download or erase your data: {PREFERENCES}",
        "Sent by Cyberwatching.eu consortium",
    ):
        assert part in text, part
    assert "<" not in text.replace("<https", "")  # no markup in the text part
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 90


def test_personalise_never_calls_the_mjml_compiler(
    compiled: CompiledIssue, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("the MJML compiler was called while personalising")

    monkeypatch.setattr(mjml, "mjml2html", refuse)
    monkeypatch.setattr(Renderer, "compile", refuse)
    monkeypatch.setattr(Renderer, "mjml_source", refuse)
    first = compiled.personalise("Ana", UNSUBSCRIBE, PREFERENCES)
    second = compiled.personalise("Bo", UNSUBSCRIBE.replace("tok", "other"), PREFERENCES)
    assert first != second and "Hello Bo," in second[0]


def test_placeholder_values_are_escaped_in_html(compiled: CompiledIssue) -> None:
    html, text = compiled.personalise('<img src=x onerror="alert(1)">', UNSUBSCRIBE, PREFERENCES)
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert 'Hello <img src=x onerror="alert(1)">,' in text  # plain text stays literal


def test_compiled_survives_a_round_trip_through_json(compiled: CompiledIssue) -> None:
    import json

    again = CompiledIssue.from_record(json.loads(json.dumps(compiled.as_record())))
    assert again == compiled


def test_content_cannot_forge_a_slot() -> None:
    content = sample_content()
    forged = replace(content, preheader="mailer-slot-0000000000000000-unsubscribe-url")
    html, _ = compile_issue(Renderer(), forged).personalise("A", UNSUBSCRIBE, PREFERENCES)
    assert "mailer-slot-0000000000000000-unsubscribe-url" in html


def test_hostile_feed_item_leaves_no_trace_in_the_mail() -> None:
    (item,) = parse((FEEDS / "hostile.xml").read_bytes(), "https://hostile.example.org/").items
    hostile = news(
        1,
        title=item.title,
        link=item.link,
        summary_html=item.summary_html,
        summary_text=item.summary_text,
        note='<script>alert("note")</script>',
    )
    content = replace(
        sample_content(),
        highlight=None,
        sections=(Section("News", (hostile,)),),
        intro_html=markdown_html("Hi <script>x()</script> [a](javascript:alert(1)) <iframe>"),
    )
    html, text = compile_issue(Renderer(), content).personalise("A", UNSUBSCRIBE, PREFERENCES)
    lowered = html.lower()
    for bad in (
        "<script",
        "onerror",
        "onclick",
        'href="javascript:',
        "javascript:alert('link')",
        "data:text",
        "<iframe",
        "position:fixed",
        "<form",
        "<input",
        "steal()",
    ):
        assert bad not in lowered, bad
    assert "Safe words" in html and "Totally normal" in html
    assert "&lt;script&gt;" in html  # the note is shown as text, not run


def test_mjml_check_names_the_problem() -> None:
    good = (
        '<mjml><mj-body><mj-section><mj-column><mj-text color="#000">Hi <b>x</b>'
        "</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    check_mjml(good)
    with pytest.raises(TemplateError, match="<mj-text> has no attribute 'colour'"):
        check_mjml(good.replace("color=", "colour="), "t")
    with pytest.raises(TemplateError, match="<mj-txt> is not an MJML component"):
        check_mjml(good.replace("mj-text", "mj-txt"))
    with pytest.raises(TemplateError, match="<div> is not an MJML component"):
        check_mjml(good.replace("<mj-column>", "<mj-column><div>raw</div>"))
    with pytest.raises(TemplateError, match="<mj-text> cannot be placed in <mj-section>"):
        check_mjml(good.replace("<mj-column>", "").replace("</mj-column>", ""))
    with pytest.raises(TemplateError, match="line 1"):
        check_mjml(good.replace("</mj-section>", ""))


def test_a_template_error_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = Renderer()
    original = renderer.mjml_source

    def broken(name: str, context: dict[str, object]) -> str:
        return original(name, context).replace('font-size="24px"', 'font-sise="24px"')

    monkeypatch.setattr(renderer, "mjml_source", broken)
    with pytest.raises(TemplateError, match="font-sise"):
        compile_issue(renderer, sample_content())


def test_event_highlight_and_empty_sections() -> None:
    content: IssueContent = replace(
        sample_content(entries=1, events=1),
        highlight=Highlight("Event of the month", event=event(9, title="Annual event")),
        sections=(),
    )
    html, text = compile_issue(Renderer(), content).personalise("A", UNSUBSCRIBE, PREFERENCES)
    assert "Annual event" in html and "EVENT OF THE MONTH" in text


def test_composed_message_headers_and_structure(compiled: CompiledIssue) -> None:
    from consent.clock import FrozenClock
    from consent.workflow import ConsentService, Policy
    from mailer.app.settings import Settings
    from mailer.delivery.composer import Composer
    from mailer.delivery.recipients import Recipient

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        MAILER_FROM="Cyberwatching.eu <newsletter@example.org>",
        base_url="https://news.example.org",
        secret_key="k" * 40,
    )
    consent = ConsentService(None, FrozenClock(), Policy(secret_key=settings.secret_key))
    composer = Composer(compiled, settings, consent)
    data = composer.compose(
        Recipient(0, 0, "ref-ana", "ana@example.org", "Ana Example"),
        composer.message_id(),
        datetime(2026, 1, 6, 9, 0, tzinfo=UTC),
    )
    unsubscribe_token = consent.unsubscribe_token("ref-ana", compiled.list_slug)
    preferences_token = consent.preferences_token("ref-ana")
    parsed = email.message_from_bytes(data, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    assert parsed["To"] == "Ana Example <ana@example.org>"
    assert parsed["Subject"] == "Cluster News #3 – January 2026"
    assert str(parsed["List-Id"]).endswith("<cyber-news.example.org>")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Precedence"] == "bulk"
    assert len(parsed.get_all("List-Unsubscribe") or []) == 1
    assert f"https://news.example.org/unsubscribe/{unsubscribe_token}" in str(
        parsed["List-Unsubscribe"]
    )
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert f"https://news.example.org/preferences/{preferences_token}" in plain.get_content()
    assert "Hello Ana Example," in html.get_content()
