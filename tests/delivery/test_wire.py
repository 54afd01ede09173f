"""Wire-form DATA: what the server stores is exactly what the composer built."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.delivery.pool import SMTPPool
from mailer.delivery.wire import WireProtocol, wire_form
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
