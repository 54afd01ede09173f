"""Bulk messages as bytes: spliced per reader yet equal to the reference personalisation;
VERP tokens that name the reader and cannot be forged."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.clock import FrozenClock
from consent.workflow import ConsentService, Policy
from mailer.app.settings import Settings
from mailer.content.newsletter import CompiledIssue
from mailer.delivery import verp
from mailer.delivery.composer import Composer
from mailer.delivery.recipients import Recipient
from mailer.mail.messages import HeaderInjection
from tests.conftest import SECRET
from tests.helpers import parts

LONG = "=".join(["Ünïcödé line with = signs and a trailing space "] * 30) + " \n"
COMPILED = CompiledIssue(
    issue_id=7,
    number=3,
    list_slug="cyber-news",
    list_name="Cyberwatching.eu Cluster News",
    subject="Cluster News #3 – janvier 2026 ✓",
    html_parts=(
        "<html><body><p>",
        "greeting",
        "</p>" + "<p>" + LONG + "</p>\n.\nFrom here" + '<a href="',
        "unsubscribe_url",
        '">leave</a> <a href="',
        "preferences_url",
        '">prefs</a></body></html>',
    ),
    text_parts=(
        "",
        "greeting",
        "\n\n" + LONG + ".\n.. dots\nFrom the start\nLeave: ",
        "unsubscribe_url",
        "\nPreferences: ",
        "preferences_url",
        "\n",
    ),
)
SETTINGS = Settings(
    _env_file=None,
    secret_key=SECRET,  # type: ignore[call-arg]
    base_url="https://news.example.org",
    MAILER_FROM="Cyberwatching.eu <newsletter@example.org>",
    verp_domain="bounces.example.org",
)
CLOCK = FrozenClock()
CONSENT = ConsentService(None, CLOCK, Policy(secret_key=SECRET))


def compose(name: str, email: str = "reader@example.org") -> tuple[EmailMessage, bytes]:
    composer = Composer(COMPILED, SETTINGS, CONSENT)
    recipient = Recipient(11, 42, "3f1c2b9e-0000-4000-8000-000000000042", email, name)
    data = composer.compose(recipient, "<abc@example.org>", CLOCK.now())
    message = message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message, data


def expected(name: str) -> tuple[str, str]:
    unsubscribe = CONSENT.unsubscribe_token("3f1c2b9e-0000-4000-8000-000000000042", "cyber-news")
    preferences = CONSENT.preferences_token("3f1c2b9e-0000-4000-8000-000000000042")
    return COMPILED.personalise(
        name,
        f"https://news.example.org/unsubscribe/{unsubscribe}",
        f"https://news.example.org/preferences/{preferences}",
    )


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n")


def test_the_spliced_message_equals_the_reference_personalisation() -> None:
    message, data = compose("Zoë O'Brien & <Co>")
    text, html = parts(message)
    want_html, want_text = expected("Zoë O'Brien & <Co>")
    assert crlf(text) == crlf(want_text)
    assert crlf(html) == crlf(want_html)
    assert message["Subject"] == COMPILED.subject
    assert message["To"] == '"Zoë O\'Brien & <Co>" <reader@example.org>'
    assert message["Precedence"] == "bulk" and message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Mon, 05 Jan 2026 09:00:00 +0000"
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    assert all(line.isascii() for line in lines)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60))
def test_any_name_splices_into_the_same_text_as_the_reference(name: str) -> None:
    message, _ = compose(name)
    text, html = parts(message)
    want_html, want_text = expected(name)
    assert crlf(text) == crlf(want_text)
    assert crlf(html) == crlf(want_html)


def test_a_name_with_a_line_break_cannot_add_a_header() -> None:
    with pytest.raises(HeaderInjection):
        compose("Eve\r\nBcc: victim@example.com")


def test_verp_sender_names_the_reader_and_cannot_be_forged() -> None:
    composer = Composer(COMPILED, SETTINGS, CONSENT)
    sender = composer.sender(Recipient(11, 42, "ref", "reader@example.org", ""))
    assert sender.startswith("bounces+s16-i7-") and sender.endswith("@bounces.example.org")
    assert verp.decode(SECRET, sender) == verp.VerpRef(42, 7)
    assert verp.decode(SECRET, sender.upper()) == verp.VerpRef(42, 7)  # case folded in transit
    forged = sender.replace("s16", "s17")
    assert verp.decode(SECRET, forged) is None
    assert verp.decode("another-secret", sender) is None
    assert verp.decode(SECRET, "newsletter@example.org") is None
    assert verp.decode(SECRET, verp.address(SECRET, "bounces", "b.example.org", 5, None)) == (
        verp.VerpRef(5, None)
    )


def test_a_test_copy_is_marked_and_keeps_the_from_address_as_sender() -> None:
    composer = Composer(COMPILED, SETTINGS, CONSENT, test=True)
    recipient = Recipient(0, 0, "ref", "editor@example.org", "")
    data = composer.compose(recipient, "<t@example.org>", CLOCK.now())
    message = message_from_bytes(data, policy=default)
    assert message["Subject"].startswith("[TEST] ")
    assert message["X-Mailer-Test"]
    assert composer.sender(recipient) == "newsletter@example.org"
