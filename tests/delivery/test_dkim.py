"""DKIM signatures made with OpenSSL: RSA, Ed25519 and both at once verify with dkimpy
against the records `mailer dkim keygen` printed, on the bytes an SMTP server received;
any change to a signed header or to the body fails them."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from consent.clock import FrozenClock
from consent.workflow import ConsentService, Policy
from mailer.app.settings import Settings
from mailer.content.newsletter import CompiledIssue
from mailer.delivery.composer import Composer
from mailer.delivery.dkim import (
    Signer,
    UnsignableMessage,
    relaxed_header,
    simple_body_hash,
    split_message,
)
from mailer.delivery.dkim_keys import DKIMKey, DKIMKeyError
from mailer.delivery.pool import SMTPPool
from mailer.delivery.recipients import Recipient
from mailer.mail.transport import Envelope
from tests.conftest import SECRET, SMTPServer
from tests.dkim_fixtures import MadeKey, keygen, signed_names, verdicts, zone

MESSAGE = (
    b"From: Cyberwatching.eu <newsletter@example.org>\r\n"
    b"To: reader@example.com\r\n"
    b"Subject: =?utf-8?q?Cluster_News_=E2=80=93_janvier?=\r\n"
    b" =?utf-8?q?_2026_with_a_subject_long_enough_to_be_folded?=\r\n"
    b"Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b'List-Id: "Cluster News" <cyber-news.example.org>\r\n'
    b"List-Unsubscribe: <https://news.example.org/unsubscribe/abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Precedence: bulk\r\n"
    b"\r\n"
    b".A body that starts with a dot\r\n"
    b"..and a line with two\r\n"
    b"\r\n"
)
WANTED = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "from",
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[MadeKey, MadeKey]:
    directory = tmp_path_factory.mktemp("dkim")
    return keygen(directory, "news2026", "rsa"), keygen(directory, "ed2026", "ed25519")


def signer(*made: MadeKey) -> Signer:
    return Signer([DKIMKey.from_file(k.path, k.selector, "example.org") for k in made])


def test_canonical_forms_are_those_of_rfc_6376_example() -> None:
    # RFC 6376 §3.4.6: the same message, relaxed header and simple body.
    message = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"
    fields, body_start = split_message(message)
    assert [relaxed_header(name, value) for name, value in fields] == [b"a:X", b"b:Y Z"]
    assert simple_body_hash(message, body_start) == hashlib.sha256(b" C \r\nD \t E\r\n").digest()
    empty = b"A: X\r\n\r\n"
    assert simple_body_hash(empty, split_message(empty)[1]) == hashlib.sha256(b"\r\n").digest()


@pytest.mark.parametrize("which", ["rsa", "ed25519", "dual"])
def test_signatures_verify_against_the_printed_dns_records_E1(
    keys: tuple[MadeKey, MadeKey], which: str
) -> None:
    rsa_key, ed_key = keys
    chosen = {"rsa": (rsa_key,), "ed25519": (ed_key,), "dual": (rsa_key, ed_key)}[which]
    data = signer(*chosen).sign(MESSAGE, timestamp=1767603600)
    assert data.endswith(MESSAGE)
    assert verdicts(data, zone(rsa_key, ed_key)) == [True] * len(chosen)
    for index, key in enumerate(chosen):
        assert signed_names(data, index) == WANTED  # C5: both List-Unsubscribe fields
        assert f"s={key.selector};".encode() in data
    # No record, or each selector publishing the other key: the same bytes fail.
    assert verdicts(data, {}) == [False] * len(chosen)
    records = zone(rsa_key, ed_key)
    swapped = dict(zip(records, reversed(records.values()), strict=True))
    assert verdicts(data, swapped) == [False] * len(chosen)


@pytest.mark.parametrize(
    "change",
    [
        (b"Cluster_News", b"Cluster_Newz"),
        (b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Nope"),
        (b"/unsubscribe/abc", b"/unsubscribe/abd"),
        (b"To: reader@example.com", b"To: other@example.com"),
        (b"\r\nFrom: Cyberwatching.eu", b"\r\nFrom: evil@example.net\r\nFrom: Cyberwatching.eu"),
        (b"Precedence: bulk\r\n", b"Precedence: bulk\r\nFrom: evil@example.net\r\n"),
        (b"with two", b"with tw0"),
        (b"with two\r\n", b"with two\r\nP.S. a line added\r\n"),
    ],
    ids=["subject", "unsub-post", "unsub-url", "to", "from-above", "from-below", "body", "added"],
)
def test_a_changed_header_or_body_fails_every_signature_C5(
    keys: tuple[MadeKey, MadeKey], change: tuple[bytes, bytes]
) -> None:
    data = signer(*keys).sign(MESSAGE)
    records = zone(*keys)
    assert verdicts(data, records) == [True, True]
    old, new = change
    assert old in data
    assert verdicts(data.replace(old, new, 1), records) == [False, False]


def test_what_relaxed_canonicalisation_allows_still_verifies(keys: tuple[MadeKey, MadeKey]) -> None:
    data = signer(*keys).sign(MESSAGE)
    records = zone(*keys)
    refolded = data.replace(b"Date: Mon, 05 Jan", b"date:   Mon,\r\n  05  Jan")
    unsigned_field = data.replace(b"Precedence: bulk", b"Precedence: bulk\r\nX-Relay: added")
    assert verdicts(refolded, records) == [True, True]
    assert verdicts(unsigned_field, records) == [True, True]


def test_every_list_field_present_is_signed_and_from_is_oversigned(
    keys: tuple[MadeKey, MadeKey],
) -> None:
    extra = (
        b"List-Archive: <https://news.example.org/archive>\r\n"
        b"List-Help: <https://news.example.org/help>\r\n"
        b"List-Post: NO\r\n"
        b"X-Mailer-Test: a test copy\r\n"
    )
    message = MESSAGE.replace(b"Precedence: bulk\r\n", b"Precedence: bulk\r\n" + extra)
    data = signer(keys[1]).sign(message)
    names = signed_names(data)
    assert names[:-1] == [*WANTED[:-1], "list-archive", "list-help", "list-post"]
    assert names[-1] == "from" and names.count("from") == 2
    assert verdicts(data, zone(*keys)) == [True]
    archive = data.replace(b"/archive>", b"/elsewhere>")
    assert verdicts(archive, zone(*keys)) == [False]


def test_bare_line_feeds_are_signed_as_smtp_will_carry_them(keys: tuple[MadeKey, MadeKey]) -> None:
    bare = MESSAGE.replace(b"\r\n", b"\n").replace(b"\n\n.A", b"\n\n.A\rmac line")
    data = signer(*keys).sign(bare)
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
    assert verdicts(data, zone(*keys)) == [True, True]


def test_messages_without_a_header_or_from_are_refused(keys: tuple[MadeKey, MadeKey]) -> None:
    with pytest.raises(UnsignableMessage):
        signer(keys[1]).sign(b"From: a@example.org\r\nSubject: no empty line after it")
    with pytest.raises(UnsignableMessage):
        signer(keys[1]).sign(b"Subject: no From\r\n\r\nbody\r\n")


def test_unusable_keys_and_names_are_refused(keys: tuple[MadeKey, MadeKey]) -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = short.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(DKIMKeyError, match="too short"):
        DKIMKey.from_bytes(pem, "s", "example.org")
    with pytest.raises(DKIMKeyError, match="2048 to 4096"):
        DKIMKey.generate("s", "example.org", "rsa", 1024)
    with pytest.raises(DKIMKeyError, match="selector"):
        DKIMKey.from_file(keys[1].path, "bad;selector", "example.org")
    with pytest.raises(DKIMKeyError, match="domain"):
        DKIMKey.from_file(keys[1].path, "s", "example.org\r\nX-Evil: 1")
    with pytest.raises(DKIMKeyError, match="not a PEM"):
        DKIMKey.from_bytes(b"not a key", "s", "example.org")
    with pytest.raises(DKIMKeyError, match="cannot read"):
        DKIMKey.from_file(keys[1].path.with_name("missing.pem"), "s", "example.org")
    with pytest.raises(DKIMKeyError, match="twice"):
        signer(keys[1], keys[1])


def test_a_bare_ed25519_seed_as_dkimpy_writes_it_is_read() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    made = DKIMKey.from_bytes(base64.b64encode(seed) + b"\n", "ed", "example.org")
    data = Signer([made]).sign(MESSAGE)
    assert verdicts(data, {f"{made.dns_name}.".encode(): made.dns_record.encode()}) == [True]


# -- copies of an issue, composed and sent through the campaign's engine ---------

LONG = "Ünïcödé line with = signs, no line break at all and a trailing space " * 30
COMPILED = CompiledIssue(
    issue_id=7,
    number=3,
    list_slug="cyber-news",
    list_name="Cyberwatching.eu Cluster News",
    subject="Cluster News #3 – janvier 2026 ✓",
    html_parts=(
        "<html><body><p>",
        "greeting",
        "</p>\n<p>" + LONG + " </p>\n.\n.starts with a dot\n" + '<a href="',
        "unsubscribe_url",
        '">leave</a> <a href="',
        "preferences_url",
        '">prefs</a></body></html>',
    ),
    text_parts=(
        "",
        "greeting",
        "\n\n" + LONG + "\n.\n.starts with a dot\nbare\rreturn\nFrom the start\nLeave: ",
        "unsubscribe_url",
        "\nPreferences: ",
        "preferences_url",
        "\n",
    ),
)


def test_composed_copies_verify_on_the_bytes_an_smtp_server_received(
    keys: tuple[MadeKey, MadeKey], smtp_server: SMTPServer
) -> None:
    settings = Settings(
        _env_file=None,
        secret_key=SECRET,  # type: ignore[call-arg]
        base_url="https://news.example.org",
        MAILER_FROM="Cyberwatching.eu <newsletter@example.org>",
    )
    clock = FrozenClock()
    dual = signer(*keys)
    composer = Composer(
        COMPILED, settings, ConsentService(None, clock, Policy(secret_key=SECRET)), signer=dual
    )
    readers = [
        Recipient(1, 41, "3f1c2b9e-0000-4000-8000-000000000041", "zoe@example.com", "Zoë Ünïcode"),
        Recipient(2, 42, "3f1c2b9e-0000-4000-8000-000000000042", "sam@example.com", ""),
    ]
    sent = {r.email: composer.compose(r, composer.message_id(), clock.now()) for r in readers}
    for data in sent.values():
        assert b"\r\n." in data  # lines that SMTP must dot-stuff
        body = data.split(b"\r\n\r\n", 1)[1]
        assert max(len(line) for line in body.split(b"\r\n")) <= 76  # LONG, soft-broken
        # Signed once per issue layout: the same bytes the general path makes.
        rest = data[data.index(b"Date: ") :]
        assert dual.signatures(rest, int(clock.now().timestamp())) + rest == data

    async def send() -> None:
        async with SMTPPool(smtp_server.url, concurrency=1, rate=1000) as pool:
            for email, data in sent.items():
                await pool.deliver(Envelope("newsletter@example.org", (email,), data))

    asyncio.run(send())
    records = zone(*keys)
    for email, data in sent.items():
        (received,) = smtp_server.to(email)
        assert received.data == data
        assert verdicts(received.data, records) == [True, True]
        tampered = received.data.replace(b"starts with a dot", b"starts with a d0t", 1)
        assert verdicts(tampered, records) == [False, False]
