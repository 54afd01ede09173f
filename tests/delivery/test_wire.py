"""Wire-form DATA: what the server stores is exactly what the composer built."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.delivery.pool import SMTPPool
from mailer.delivery.skeleton import Part, Skeleton
from mailer.delivery.wire import WireProtocol, wire_form
from mailer.mail.headers import Mailbox
from mailer.mail.transport import Envelope
from tests.conftest import SMTPServer


def test_wire_form_quotes_leading_dots_and_ends_the_data() -> None:
    assert wire_form(b"a\r\n.b\r\n..c\r\n") == b"a\r\n..b\r\n...c\r\n.\r\n"
    assert wire_form(b".first\r\nlast") == b"..first\r\nlast\r\n.\r\n"


@pytest.mark.parametrize("raw", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\n\rb\r\n", b"a\n"])
def test_lines_not_all_crlf_are_left_to_aiosmtplib(raw: bytes) -> None:
    assert wire_form(raw) is None


@given(st.lists(st.sampled_from([b"x", b".", b"..", b"=", b" ", b"\r\n", b"\xc3\xa9"])))
def test_wire_form_round_trips(pieces: list[bytes]) -> None:
    message = b"".join(pieces)
    wire = wire_form(message)
    if wire is None:
        return
    body = wire[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    unquoted = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    expected = message if message.endswith(b"\r\n") else message + b"\r\n"
    assert unquoted == expected


@pytest.mark.parametrize(
    "body",
    [
        b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\nend\r\n",  # wire form
        b"Subject: bare\n\n.leading dot\nbare LF\n",  # aiosmtplib's path
    ],
    ids=["crlf", "bare-lf"],
)
def test_the_server_stores_what_was_sent(smtp_server: SMTPServer, body: bytes) -> None:
    async def send() -> None:
        async with SMTPPool(smtp_server.url, concurrency=1, rate=100) as pool:
            result = await pool.send(Envelope("a@example.org", ("b@example.org",), body))
            assert result.code == 250
            [connection] = pool._connections
            assert isinstance(connection.smtp.protocol, WireProtocol)

    asyncio.run(send())
    [received] = smtp_server.received
    assert received.data.replace(b"\r\n", b"\n") == body.replace(b"\r\n", b"\n")


_TEXT = st.lists(
    st.sampled_from(["x", ".", "..", "=", " ", "\n", "\r", "\r\n", "é", "€", "\t", "-", "y" * 70]),
    max_size=60,
).map("".join)


@given(
    pieces=st.lists(_TEXT, min_size=1, max_size=4),
    name=_TEXT,
    link=_TEXT,
)
def test_the_skeleton_s_wire_form_is_what_scanning_its_message_gives(
    pieces: list[str], name: str, link: str
) -> None:
    """Hostile pieces and values (leading dots after every kind of line start, lone CR
    and LF, long lines that quoted-printable breaks before a dot): the wire form the
    skeleton joins is byte for byte what wire_form makes of the message."""
    parts: list[str] = []
    for index, piece in enumerate(pieces):
        parts += [piece, ("name", "link")[index % 2]]
    parts.pop()
    skeleton = Skeleton.build(
        sender=Mailbox("newsletter@example.org", "Cyberwatching.eu"),
        subject=".a subject",
        text=Part.from_parts("plain", parts),
        html_source=Part.from_parts("html", parts, escape=html.escape),
    )
    fields = {"date": "Tue, 01 Dec 2026 10:00:00 +0000", "to": "reader@example.org"}
    values = {"name": name, "link": link}
    message, wire = skeleton.message_and_wire(message_id="<1@example.org>", values=values, **fields)
    assert wire == wire_form(message)
    # And the message is what the reader reads: the text with their values put in.
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    plain = parsed.get_body(("plain",))
    assert plain is not None
    # Each piece and value is encoded on its own, its line ends made CRLF (a value
    # ending in CR before a piece starting with LF is two line ends, not one).
    sent = [values.get(p, p) if i % 2 else p for i, p in enumerate(parts)]
    crlf = ["\r\n".join(t.replace("\r\n", "\n").replace("\r", "\n").split("\n")) for t in sent]
    assert plain.get_content() == "".join(crlf)


def test_a_campaign_copy_goes_out_in_the_composer_s_wire_form(smtp_server: SMTPServer) -> None:
    """A reader named with a leading dot, a body line that starts with one: DATA sends the
    composer's wire form as it is, and the server stores the message the composer made."""
    parts = ["Hello ", "name", "\n.a line that starts with a dot\n..and two\n"]
    skeleton = Skeleton.build(
        sender=Mailbox("newsletter@example.org", "Cyberwatching.eu"),
        subject="dots",
        text=Part.from_parts("plain", parts),
        html_source=Part.from_parts("html", parts, escape=html.escape),
    )
    message, wire = skeleton.message_and_wire(
        date="Tue, 01 Dec 2026 10:00:00 +0000",
        to="reader@example.org",
        message_id="<1@example.org>",
        values={"name": ".Ada\n.Lovelace"},
    )
    assert b"\r\n..a line" in wire and b"\r\n.a line" in message

    async def send() -> None:
        async with SMTPPool(smtp_server.url, concurrency=1, rate=100) as pool:
            envelope = Envelope("a@example.org", ("b@example.org",), message, wire)
            assert (await pool.send(envelope)).code == 250

    asyncio.run(send())
    [received] = smtp_server.received
    assert received.data.replace(b"\r\n", b"\n") == message.replace(b"\r\n", b"\n")


def test_mail_and_rcpt_name_the_addresses_as_given_and_odd_ones_take_aiosmtplib_s_path(
    smtp_server: SMTPServer,
) -> None:
    """The pool writes a plain address on MAIL and RCPT itself (after aiosmtplib's EHLO on
    the session's first MAIL); a display-name form or a hostile one goes through aiosmtplib,
    which parses it down to its address: nothing unchecked reaches the command line."""
    body = b"Subject: x\r\n\r\nbody\r\n"

    async def send() -> list[int]:
        codes = []
        async with SMTPPool(smtp_server.url, concurrency=1, rate=1000) as pool:
            for sender, to in [
                ("bounce+a1b2@example.org", "first@example.org"),
                ("bounce+c3d4@example.org", "second@example.org"),
                ("Editor <editor@example.org>", "third@example.org"),
            ]:
                codes.append((await pool.send(Envelope(sender, (to,), body))).code)
            hostile = Envelope(
                "a@example.org\r\nRCPT TO:<x@evil.example>", ("y@example.org",), body
            )
            codes.append((await pool.send(hostile)).code)
        return codes

    assert asyncio.run(send()) == [250, 250, 250, 250]
    got = [(r.mail_from, r.rcpt_tos) for r in smtp_server.received]
    assert got == [
        ("bounce+a1b2@example.org", ["first@example.org"]),
        ("bounce+c3d4@example.org", ["second@example.org"]),
        ("editor@example.org", ["third@example.org"]),
        ("a@example.org", ["y@example.org"]),  # no second recipient smuggled in
    ]
