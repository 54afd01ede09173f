"""Every mail the service builds, driven with hostile names, subjects, list names and addresses.

Pure functions, no database: each kind of transactional mail (confirmation, welcome,
access link, address check, editor notice) and each newsletter copy (campaign, test
send) is built from text made of encoded words, quotes, brackets, commas, CR LF and
Unicode line separators, and parsed back with the stdlib parser under policy.default
and policy.compat32. Whatever the text, the envelope names the intended address
alone, the header set is that of a benign mail, and names and subjects show literally.
"""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32, default
from email.utils import getaddresses
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from consent.addresses import InvalidInput, clean_name, clean_text, normalise_address
from consent.clock import FrozenClock
from consent.rights import AccessLinkRequested, AddressChangeRequested
from consent.workflow import ConfirmationRequested, ConsentService, Policy, Subscribed
from mailer.app.settings import Settings
from mailer.content.newsletter import CompiledIssue
from mailer.delivery.composer import Composer
from mailer.delivery.recipients import Recipient
from mailer.mail import headers, messages, transactional
from mailer.mail.headers import HeaderInjection, Mailbox
from mailer.mail.render import Renderer
from mailer.mail.transactional import EditorNotice, Stationery
from tests.conftest import SECRET
from tests.helpers import shown_mailbox

SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    secret_key=SECRET,
    base_url="https://news.example.org",
    MAILER_FROM="Cyberwatching.eu <newsletter@example.org>",
)
CLOCK = FrozenClock()
CONSENT = ConsentService(None, CLOCK, Policy(secret_key=SECRET))
RENDERER = Renderer()
REF = "3f1c2b9e-0000-4000-8000-000000000042"
SENDER = "newsletter@example.org"
ATTACKER = "evil@attacker.example"

BREAKS = ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\x00", "\x0b", "\t", "\ud800"]
FRAGMENTS = [
    "=?", "?=", "=?utf-8?q?", "=?utf-8?b?", "=?iso-8859-1?q?", "=0D=0A", "=0A", "=3C", "=40",
    "=3E", "_", "?", "=", "<", ">", "@", ",", ";", ":", '"', "\\", "(", ")", "[", "]", " ",
    "  ", "é", "Ü", "а", "ß", "✓", "\u202e", "Bcc: ", "To: ", "evil", ATTACKER,
    "attacker.example", "PGV2aWxAYXR0YWNrZXIuZXhhbXBsZT4=", "Ada", "Lovelace", "x" * 70,
]  # fmt: skip
printable = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=4),
    ),
    min_size=1,
    max_size=10,
).map("".join)
broken = st.tuples(printable, st.sampled_from(BREAKS), printable).map("".join)
hostile = st.one_of(printable, printable, printable, printable, broken)
mailable = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,24}", fullmatch=True),
    st.sampled_from(["example.org", "exämple.org", "BÜCHER.example", "xn--exmple-cua.org"]),
)
addresses = st.one_of(
    mailable,
    mailable,
    mailable,
    st.builds(lambda local, domain: f"{local}@{domain}", hostile, hostile),
    hostile,
)


def facts(list_name: str) -> dict[str, Any]:
    return {
        "list_name": list_name,
        "list_slug": "cyber-news",
        "purpose": "News of the clusters",
        "cadence": "monthly",
        "controller_name": "Cyberwatching.eu consortium",
        "controller_contact": "dpo@example.org",
        "consent_text": "I agree.",
        "consent_texts": {1: "I agree."},
    }


def compiled(subject: str, list_name: str) -> CompiledIssue:
    return CompiledIssue(
        issue_id=7,
        number=3,
        list_slug="cyber-news",
        list_name=list_name,
        subject=subject,
        html_parts=("<p>", "greeting", '</p><a href="', "unsubscribe_url", '">leave</a>'),
        text_parts=("", "greeting", "\nLeave: ", "unsubscribe_url", "\n"),
    )


# Each kind of mail: (address, name, subject, list name) -> (envelope recipient, bytes).
Build = Callable[[str, str, str, str], tuple[str, bytes]]


def _transactional(event: Callable[[str, str, str], object]) -> Build:
    def build(address: str, name: str, subject: str, list_name: str) -> tuple[str, bytes]:
        stationery = Stationery(SETTINGS, CONSENT, lambda slug: facts(list_name))
        letter = transactional.letter_for(event(address, name, subject), stationery)
        assert letter is not None
        outgoing = transactional.write(letter, RENDERER, SETTINGS, CLOCK.now())
        envelope = outgoing.envelope(SETTINGS.from_address)
        assert envelope.sender == SENDER
        return envelope.recipients[0] if len(envelope.recipients) == 1 else "", envelope.data

    return build


def _newsletter(test: bool) -> Build:
    def build(address: str, name: str, subject: str, list_name: str) -> tuple[str, bytes]:
        composer = Composer(compiled(subject, list_name), SETTINGS, CONSENT, test=test)
        recipient = Recipient(1, 42, REF, address, "" if test else name)
        data = composer.compose(recipient, composer.message_id(), CLOCK.now())
        # As mailer.delivery.runner and send_test build the envelope: the stored address.
        return headers.mail_address(recipient.email), data

    return build


KINDS: dict[str, Build] = {
    "confirmation": _transactional(
        lambda a, n, s: ConfirmationRequested(REF, a, n, "cyber-news", "tok")
    ),
    "welcome": _transactional(lambda a, n, s: Subscribed(REF, a, n, "cyber-news", 1)),
    "access-link": _transactional(lambda a, n, s: AccessLinkRequested(REF, a, n, "tok")),
    "address-check": _transactional(lambda a, n, s: AddressChangeRequested(REF, a, n, "tok")),
    "editor-notice": _transactional(lambda a, n, s: EditorNotice(a, s, f"Body for {n}")),
    "newsletter": _newsletter(test=False),
    "test-send": _newsletter(test=True),
}
# The subject each kind shows for a given subject and list name.
SUBJECTS: dict[str, Callable[[str, str], str]] = {
    "confirmation": lambda s, ln: f"Please confirm your subscription to {ln}",
    "welcome": lambda s, ln: f"Welcome to {ln}",
    "access-link": lambda s, ln: "Your data with us: download, correct or erase it",
    "address-check": lambda s, ln: "Please confirm your new address",
    "editor-notice": lambda s, ln: s,
    "newsletter": lambda s, ln: s,
    "test-send": lambda s, ln: f"[TEST] {s}",
}
BENIGN: dict[str, list[str]] = {
    kind: list(message_from_bytes(build("ada@example.org", "Ada", "Hello", "News")[1]).keys())
    for kind, build in KINDS.items()
}


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


NAMED = {"confirmation", "welcome", "access-link", "address-check", "newsletter"}


def check(kind: str, address: str, name: str, subject: str, list_name: str) -> None:
    recipient, data = KINDS[kind](address, name, subject, list_name)
    assert recipient == address  # the envelope: the intended address alone
    for line in header_block(data).split(b"\r\n"):
        assert line.isascii() and len(line) <= 998
        assert line[:1] == b" " or b":" in line  # a field, or the fold of one
    modern = message_from_bytes(data, policy=default)
    legacy: Message = message_from_bytes(data, policy=compat32)
    for parsed in (modern, legacy):
        assert list(parsed.keys()) == BENIGN[kind]  # no header added, none lost
    assert [a for _, a in getaddresses(legacy.get_all("To") or [])] == [address]
    assert [a.addr_spec for a in modern["To"].addresses] == [address]
    assert [a.addr_spec for a in modern["From"].addresses] == [SENDER]
    assert shown_mailbox(data) == (name if kind in NAMED else "", address)
    assert str(modern["Subject"]) == SUBJECTS[kind](subject, list_name)
    if modern["List-Id"] is not None:
        assert shown_mailbox(data, "List-Id") == (list_name, "cyber-news.example.org")


def accepted(function: Callable[[str], str], value: str) -> str | None:
    """What the input checks make of `value`, or None where they refuse it (422 / exit 2)."""
    try:
        return function(value)
    except InvalidInput:
        return None


def forbidden(text: str) -> bool:
    return any(c in text for c in "\r\n\x00\x0b\x85\u2028\u2029\t") or any(
        "\ud800" <= c <= "\udfff" or ord(c) < 32 or 127 <= ord(c) < 160 for c in text
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(address=mailable, name=printable, subject=printable, list_name=printable)
@example(
    address="victim@example.org",
    name="=?utf-8?q?=3Cevil=40attacker=2Eexample=3E",
    subject="=?utf-8?q?Hi=0D=0ABcc:_evil@attacker.example?=",
    list_name='News" <evil@attacker.example>',
)
def test_D1_attack1_8_hostile_text_never_adds_a_recipient_or_a_header(
    kind: str, address: str, name: str, subject: str, list_name: str
) -> None:
    """What the input checks accept always builds, with the intended recipient and header
    set, names and subjects shown literally."""
    stored = accepted(normalise_address, address)
    display = accepted(clean_name, name)
    title = accepted(lambda s: clean_text(s, "the subject", 300), subject)
    label = accepted(lambda s: clean_text(s, "the list name", 200), list_name)
    if stored is None or display is None or title is None or label is None:
        event("refused at input (an encoded word in the address, or a length)")
        return
    event("built")
    check(kind, stored, display, title, label)


@settings(max_examples=100, deadline=None)
@given(address=addresses, name=broken, subject=broken)
@example(address="ada@exämple.org", name="Zoë\u2028Bcc: x", subject="a\r\nBcc: x")
def test_attack1_5_8_line_breaks_and_controls_are_refused_at_input(
    address: str, name: str, subject: str
) -> None:
    """A name, subject or label holding a line break or control character never gets to a
    mail: every way in refuses it (422, or exit code 2) and the builder would too."""
    assert accepted(clean_name, name) is None
    assert accepted(lambda s: clean_text(s, "the subject", 300), subject) is None
    with pytest.raises(HeaderInjection):
        Mailbox.of("victim@example.org", name)
    with pytest.raises(HeaderInjection):
        headers.unstructured("Subject", subject)
    stored = accepted(normalise_address, address)
    assert stored is None or headers.mail_address(stored) == stored


@settings(max_examples=100, deadline=None)
@given(address=addresses, text=hostile)
def test_attack1_8_the_header_builder_alone_refuses_or_writes_exactly_one_header(
    address: str, text: str
) -> None:
    """Raw text straight into the builder: refused when it holds a line break or control
    character, else one header that decodes back to the text and names one address."""
    try:
        mailbox = Mailbox.of(address, text)
        subject = headers.unstructured("Subject", text)
    except HeaderInjection:
        assert forbidden(text) or accepted(normalise_address, address) is None
        return
    assert not forbidden(text)
    data = f"To: {mailbox.header()}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode("ascii")
    modern = message_from_bytes(data, policy=default)
    legacy = message_from_bytes(data, policy=compat32)
    assert list(modern.keys()) == list(legacy.keys()) == ["To", "Subject"]
    assert [a.addr_spec for a in modern["To"].addresses] == [mailbox.address]
    name, shown_address = shown_mailbox(data)
    assert shown_address == mailbox.address
    assert _spaces(name) == _spaces(text)
    assert _spaces(str(modern["Subject"])) == _spaces(text)


def _spaces(text: str) -> str:
    """Runs of spaces as one, none at the ends: how headers may present them."""
    return " ".join(part for part in text.split(" ") if part)


def test_attack1_the_reports_name_shows_literally_in_every_kind() -> None:
    name = "=?utf-8?q?=3Cevil=40attacker=2Eexample=3E"
    for kind in KINDS:
        check(kind, "victim@example.org", name, "Issue 3", "Cluster News")


def test_header_values_fold_within_78_columns_and_unfold_to_the_text() -> None:
    subject = "Cluster news: " + "a fairly long subject line " * 6
    value = headers.unstructured("Subject", subject)
    lines = f"Subject: {value}".split("\r\n")
    assert len(lines) > 1 and all(len(line) <= 78 for line in lines)
    assert value.replace("\r\n", "") == subject
    long_name = "Zoë Ünïcödé " * 12
    mailbox = Mailbox.of("zoe@example.org", long_name.strip()).header()
    assert all(len(line) <= 78 for line in f"To: {mailbox}".split("\r\n"))


def test_plain_names_stay_readable_and_specials_are_quoted() -> None:
    assert Mailbox.of("ada@example.org", "Ada Lovelace").header() == (
        "Ada Lovelace <ada@example.org>"
    )
    assert Mailbox.of("ada@example.org", 'Ada "AL" L.').header() == (
        '"Ada \\"AL\\" L." <ada@example.org>'
    )
    assert Mailbox.of("ada@example.org").header() == "ada@example.org"
    assert messages.list_id("Cluster News", "cyber-news", "example.org") == (
        "Cluster News <cyber-news.example.org>"
    )


@pytest.mark.parametrize(
    ("address", "sent"),
    [("ada@exämple.org", "ada@xn--exmple-cua.org"), ("Ada@Example.org", "Ada@Example.org")],
)
def test_attack5_addresses_are_written_in_ascii(address: str, sent: str) -> None:
    assert Mailbox.of(address).address == sent


@pytest.mark.parametrize(
    "address",
    ["josé@example.org", "=?utf-8?q?x?=@example.org", "a@b.example\r\nBcc: x@y", "<a@b.c>", ""],
)
def test_attack5_an_address_that_cannot_be_mailed_in_ascii_is_refused(address: str) -> None:
    with pytest.raises(HeaderInjection):
        Mailbox.of(address)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_encoded_words_are_short_and_decode_back_to_the_text(text: str) -> None:
    words = headers.encoded_words(text)
    assert all(len(word) <= 75 and word.isascii() for word in words)  # RFC 2047 §2
    assert str(make_header(decode_header(" ".join(words)))) == text
