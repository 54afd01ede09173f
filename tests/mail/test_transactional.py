"""Transactional mail: built off the event loop, sent to the address the event carries,
and one event plus one builder away from a new kind of mail."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailer.app.wiring import Runtime
from mailer.mail import transactional
from mailer.mail.headers import Mailbox
from mailer.mail.render import Rendered, Renderer
from mailer.mail.transactional import Letter, Stationery
from mailer.web.app import create_app
from tests.conftest import SMTPServer

VICTIM = "victim@example.org"


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


class GatedRenderer:
    """The real renderer, held at a gate until the test has been served something else."""

    def __init__(self, inner: Renderer) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.released = threading.Event()
        self.threads: list[int] = []

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        self.threads.append(threading.get_ident())
        self.entered.set()
        # On the loop, this wait would stop the very request that opens the gate.
        if not self.released.wait(timeout=30):
            raise AssertionError("no other request was served while the mail was built")
        return self.inner.render(name, context)


def test_the_confirmation_is_built_off_the_event_loop_which_keeps_serving(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    gate = GatedRenderer(runtime.renderer)
    runtime.mail.renderer = gate  # type: ignore[assignment]
    app = create_app(runtime)

    async def scenario() -> tuple[int, int, int]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="https://news.example.org"
        ) as http:
            body = {"email": VICTIM, "name": "Victim", "consent": True}
            posting = asyncio.create_task(http.post("/subscribe/cyber-news", json=body))
            assert await asyncio.to_thread(gate.entered.wait, 30)
            page = await http.get("/subscribe/cyber-news")  # while the mail is being built
            gate.released.set()
            answer = await posting
            return page.status_code, answer.status_code, threading.get_ident()

    page, answer, loop_thread = asyncio.run(scenario())
    assert (page, answer) == (200, 202)
    assert gate.threads and loop_thread not in gate.threads
    assert [r.rcpt_tos for r in smtp_server.received] == [[VICTIM]]


@dataclass(frozen=True)
class ListClosing:
    """An invented kind of mail, to show what adding one takes."""

    email: str
    name: str
    list_name: str


def test_a_new_kind_of_mail_is_an_event_and_a_builder(
    runtime: Runtime, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transactional, "_KINDS", dict(transactional._KINDS))

    @transactional.mail_kind(ListClosing)
    def closing(event: ListClosing, s: Stationery) -> Letter:
        return Letter(
            to=Mailbox.of(event.email, event.name),
            subject=f"{event.list_name} is closing",
            template=None,
            headers={"List-Post": "NO"},  # a builder's own headers keep the house's (D5)
            text=f"Dear {event.name}, {event.list_name} sends no more issues.",
        )

    event = ListClosing(VICTIM, "=?utf-8?q?=3Cevil=40attacker=2Eexample=3E", "News")
    assert asyncio.run(runtime.mail.deliver([event])) == 1
    [received] = smtp_server.received
    assert received.rcpt_tos == [VICTIM]
    assert received.message["Subject"] == "News is closing"
    assert received.message.get_all("Auto-Submitted") == ["auto-generated"]
    assert received.message["List-Post"] == "NO"
    assert len(received.message.get_all("Date") or []) == 1
    assert received.message["Message-ID"].endswith("@example.org>")
    assert [a.addr_spec for a in received.message["To"].addresses] == [VICTIM]


def test_events_that_call_for_no_mail_send_nothing(
    runtime: Runtime, smtp_server: SMTPServer
) -> None:
    from consent.workflow import Unsubscribed

    assert asyncio.run(runtime.mail.deliver([Unsubscribed("ref", "cyber-news")])) == 0
    assert smtp_server.received == []
