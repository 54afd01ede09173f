"""SMTP PIPELINING (RFC 2920): MAIL, RCPT and DATA of a copy in one write, against a small
SMTP server over real TCP whose every read and reply a test sets and sees."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailer.delivery.pool import DeliveryUncertain, SMTPPool
from mailer.mail.transport import Envelope, SendResult
from tests.conftest import SMTPServer
from tests.delivery_fixtures import (
    PickyHandler,
    picky_server_fixture,  # noqa: F401  (the picky_server fixture)
)

BODY = b"From: a@example.org\r\nSubject: hi\r\n\r\n.a line that starts with a dot\r\nbye\r\n"


@dataclass
class Relay:
    """An SMTP server scripted by its fields. It answers the command lines of each read
    together, as a pipelining server does, and keeps them (`reads`) and every message."""

    pipelining: bool = True
    refuse: dict[str, str] = field(default_factory=dict)  # RCPT address -> its reply
    data_without_recipients: bool = False  # DATA answered 354 though no RCPT was accepted
    silent_once: bool = False  # the first pipelined DATA is never answered
    drop_during_body: bool = False  # hangs up once the message has arrived, unanswered
    drip: bool = False  # replies written a byte at a time
    reads: list[list[str]] = field(default_factory=list)
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    sessions: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state: dict[str, Any] = {"mail": None, "rcpts": [], "data": False}
        buffer = b""
        await self._say(writer, ["220 relay.example ESMTP"])
        while chunk := await reader.read(1 << 16):
            buffer += chunk
            if state["data"]:
                buffer = await self._body(writer, state, buffer)
                continue
            lines: list[str] = []
            replies: list[str] = []
            then = ""
            while b"\r\n" in buffer and not state["data"] and not then:
                line, buffer = buffer.split(b"\r\n", 1)
                lines.append(line.decode())
                reply, then = self._answer(line.decode(), state, grouped=b"\r\n" in buffer)
                replies += reply
            self.reads.append(lines)
            await self._say(writer, replies)
            if then == "fall silent":
                await asyncio.sleep(3600)  # cancelled when the test's server closes
            if then == "hang up":
                break
            if state["data"] and buffer:
                buffer = await self._body(writer, state, buffer)
        writer.close()

    def _answer(self, line: str, state: dict[str, Any], grouped: bool) -> tuple[list[str], str]:
        """The reply to one command line, and what the relay does next: "" (go on),
        "hang up" or "fall silent"."""
        verb = line[:4].upper()
        if verb == "EHLO":
            offered = ["250-PIPELINING"] if self.pipelining else []
            return ["250-relay.example", *offered, "250 8BITMIME"], ""
        if verb == "MAIL":
            state["mail"], state["rcpts"] = line.partition("<")[2].rstrip(">"), []
            state["group"] = grouped
            return ["250 2.1.0 Ok"], ""
        if verb == "RCPT":
            address = line.partition("<")[2].rstrip(">")
            reply = self.refuse.get(address, "250 2.1.5 Ok")
            if reply.startswith("2"):
                state["rcpts"].append(address)
            return reply.split("\r\n"), "hang up" if reply.startswith("421") else ""
        if verb == "DATA":
            if self.silent_once and state.get("group"):
                self.silent_once = False
                return [], "fall silent"
            if state["rcpts"] or self.data_without_recipients:
                state["data"] = True
                return ["354 End data with <CR><LF>.<CR><LF>"], ""
            return ["554 5.5.1 Error: no valid recipients"], ""
        if verb == "QUIT":
            return ["221 2.0.0 Bye"], "hang up"
        return ["250 2.0.0 Ok"], ""  # RSET, NOOP

    async def _body(
        self, writer: asyncio.StreamWriter, state: dict[str, Any], buffer: bytes
    ) -> bytes:
        if buffer.startswith(b".\r\n"):
            data, rest = b"", buffer[3:]
        elif b"\r\n.\r\n" in buffer:
            data, _, rest = buffer.partition(b"\r\n.\r\n")
            data += b"\r\n"
        else:
            return buffer  # more to come
        lines = data.split(b"\r\n")
        data = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
        self.messages.append((state["mail"], list(state["rcpts"]), data))
        state["data"] = False
        if self.drop_during_body:
            writer.close()
            return b""
        await self._say(writer, ["250 2.0.0 Ok: queued"])
        return rest

    async def _say(self, writer: asyncio.StreamWriter, replies: list[str]) -> None:
        data = "".join(f"{r}\r\n" for r in replies).encode()
        if not self.drip:
            writer.write(data)
            return
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)

    @property
    def grouped(self) -> list[bool]:
        """For each MAIL received: whether its RCPT and DATA came in the same read."""
        found = []
        for lines in self.reads:
            for i, line in enumerate(lines):
                if line.startswith("MAIL"):
                    verbs = [later[:4] for later in lines[i : i + 3]]
                    found.append(verbs == ["MAIL", "RCPT", "DATA"])
        return found


def run_with(relay: Relay, work: Callable[[str], Coroutine[Any, Any, Any]]) -> Any:
    """Serve `relay` on loopback while `work(url)` runs; its result."""

    async def main() -> Any:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await relay.serve(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await work(f"smtp://127.0.0.1:{port}")
        finally:
            server.close()

    return asyncio.run(main())


def copies(count: int, refused: str = "") -> list[Envelope]:
    return [
        Envelope(
            f"bounces+{i}@example.org",
            (refused if i == 1 and refused else f"r{i}@example.org",),
            BODY,
        )  # fmt: skip
        for i in range(count)
    ]


async def send_each(url: str, envelopes: list[Envelope], **pool: Any) -> list[SendResult]:
    """Send one after another on one connection."""
    results = []
    async with SMTPPool(url, concurrency=1, rate=1000, **pool) as smtp:
        for envelope in envelopes:
            results.append(await smtp.send(envelope))
    return results


def test_a_copy_s_mail_rcpt_and_data_go_in_one_write_and_arrive_whole() -> None:
    relay = Relay()
    results = run_with(relay, lambda url: send_each(url, copies(4)))
    assert [r.code for r in results] == [250] * 4
    # aiosmtplib greets the relay (EHLO) on connecting: every transaction is one group.
    assert relay.grouped == [True] * 4
    assert relay.messages == [
        (f"bounces+{i}@example.org", [f"r{i}@example.org"], BODY) for i in range(4)
    ]
    assert relay.sessions == 1


def test_a_session_greeted_by_its_first_mail_pipelines_the_transactions_after_it() -> None:
    """With STARTTLS off, aiosmtplib greets the relay with the session's first MAIL: that
    transaction goes one command at a time, the later ones in groups."""
    relay = Relay()
    results = run_with(relay, lambda url: send_each(url + "?starttls=0", copies(3)))
    assert [r.code for r in results] == [250] * 3
    assert relay.grouped == [False, True, True]


def test_a_relay_that_does_not_offer_pipelining_gets_one_command_at_a_time() -> None:
    relay = Relay(pipelining=False)
    results = run_with(relay, lambda url: send_each(url, copies(3)))
    assert [r.code for r in results] == [250] * 3
    assert relay.grouped == [False, False, False]
    assert [m[1] for m in relay.messages] == [["r0@example.org"], ["r1@example.org"],
                                             ["r2@example.org"]]  # fmt: skip


def test_a_refused_recipient_is_that_recipient_s_reply_and_the_session_goes_on() -> None:
    relay = Relay(refuse={"gone@example.org": "550-5.1.1 <gone@example.org>: no such user\r\n"
                                              "550 5.1.1 Recipient address rejected"})  # fmt: skip
    results = run_with(relay, lambda url: send_each(url, copies(3, refused="gone@example.org")))
    assert [r.code for r in results] == [250, 550, 250]
    assert "no such user" in results[1].reply and "Recipient address rejected" in results[1].reply
    assert relay.grouped == [True] * 3
    assert [m[1] for m in relay.messages] == [["r0@example.org"], ["r2@example.org"]]
    assert relay.sessions == 1


def test_data_accepted_after_a_refused_recipient_is_ended_with_a_lone_dot() -> None:
    """RFC 2920 §3.1: a relay may answer 354 though no recipient was accepted; the client
    ends the empty message with a dot. The copy's text never reaches that relay."""
    relay = Relay(refuse={"gone@example.org": "550 5.1.1 no such user"},
                  data_without_recipients=True)  # fmt: skip
    results = run_with(relay, lambda url: send_each(url, copies(3, refused="gone@example.org")))
    assert [r.code for r in results] == [250, 550, 250]
    assert relay.messages == [
        ("bounces+0@example.org", ["r0@example.org"], BODY),
        ("bounces+1@example.org", [], b""),  # the lone dot: no recipient, no text
        ("bounces+2@example.org", ["r2@example.org"], BODY),
    ]


def test_a_421_then_a_hang_up_is_the_421_and_the_next_copy_gets_a_new_session() -> None:
    relay = Relay(refuse={"busy@example.org": "421 4.7.0 Too many connections, slow down"})
    results = run_with(relay, lambda url: send_each(url, copies(3, refused="busy@example.org")))
    assert [r.code for r in results] == [250, 421, 250]
    assert [m[1] for m in relay.messages] == [["r0@example.org"], ["r2@example.org"]]
    assert relay.sessions == 2


def test_replies_that_arrive_a_byte_at_a_time_are_read_whole() -> None:
    relay = Relay(drip=True, refuse={"gone@example.org": "550-5.1.1 first line\r\n"
                                                         "550 5.1.1 second line"})  # fmt: skip
    results = run_with(relay, lambda url: send_each(url, copies(3, refused="gone@example.org")))
    assert [r.code for r in results] == [250, 550, 250]
    assert results[1].reply == "5.1.1 first line\n5.1.1 second line"
    assert relay.grouped == [True] * 3


def test_a_relay_silent_after_the_group_sent_nothing_so_the_copy_is_tried_again() -> None:
    """DATA's reply never comes: nothing of the message was sent, so the pool tries again
    on a new session (as for a link lost before DATA), never `uncertain`."""
    relay = Relay()

    async def work(url: str) -> list[SendResult]:
        async with SMTPPool(url, concurrency=1, rate=1000, timeout=1) as smtp:
            results = [await smtp.send(copies(1)[0])]
            relay.silent_once = True  # the next group's DATA goes unanswered
            return results + [await smtp.send(e) for e in copies(3)[1:]]

    results = run_with(relay, work)
    assert [r.code for r in results] == [250] * 3
    assert relay.sessions == 2
    assert [m[1] for m in relay.messages] == [["r0@example.org"], ["r1@example.org"],
                                             ["r2@example.org"]]  # fmt: skip


def test_a_link_broken_once_the_message_went_out_is_uncertain() -> None:
    relay = Relay()

    async def work(url: str) -> BaseException | None:
        async with SMTPPool(url, concurrency=1, rate=1000) as smtp:
            await smtp.send(copies(1)[0])
            relay.drop_during_body = True
            try:
                await smtp.send(copies(2)[1])
            except DeliveryUncertain as exc:
                return exc
        return None

    assert isinstance(run_with(relay, work), DeliveryUncertain)
    assert relay.grouped == [True, True]
    assert len(relay.messages) == 2  # the relay has it: it must not be sent again


@pytest.mark.parametrize("kind", ["defer", "reject"])
def test_aiosmtpd_with_pipelining_answers_each_copy_as_one_command_at_a_time_would(
    picky_server: tuple[str, PickyHandler], kind: str
) -> None:
    """A real SMTP server (aiosmtpd, PIPELINING said) refusing one recipient: the same
    replies as without pipelining, one session, the others delivered."""
    url, handler = picky_server
    if kind == "defer":
        handler.defer_always = {"r1@example.org"}
    else:
        handler.reject = {"r1@example.org"}
    pool = SMTPPool(url, concurrency=1, rate=1000)

    async def work() -> list[SendResult]:
        async with pool:
            return [await pool.send(e) for e in copies(4)]

    codes = [r.code for r in asyncio.run(work())]
    assert codes == [250, 451 if kind == "defer" else 550, 250, 250]
    assert sorted(r for m in handler.received for r in m.rcpt_tos) == [
        "r0@example.org", "r2@example.org", "r3@example.org"]  # fmt: skip
    assert pool.connections_opened == 1


def test_the_recording_server_says_pipelining(smtp_server: SMTPServer) -> None:
    """The suite's relays offer PIPELINING, as real ones do: campaigns in the other tests
    take the pipelined path."""

    async def work() -> bool:
        async with SMTPPool(smtp_server.url, concurrency=1, rate=1000) as pool:
            await pool.send(copies(1)[0])
            [connection] = pool._connections
            assert connection.smtp is not None
            return connection.smtp.supports_extension("pipelining")

    assert asyncio.run(work())
