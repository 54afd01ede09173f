"""Fixtures for the delivery tests: subscribers in every state, approved issues, SMTP servers
that misbehave on purpose, and a runner whose sleeps move the frozen clock."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from consent.clock import FrozenClock
from consent.workflow import ConfirmationRequested, Evidence
from mailer.app.wiring import Runtime
from mailer.content import curation
from tests.conftest import Pipelining, Received, free_port

FORM = Evidence(method="double-opt-in", source="form:/subscribe/cyber-news", ip="203.0.113.9")


def subscribe(runtime: Runtime, email: str, name: str = "", slug: str = "cyber-news") -> None:
    """Request and confirm, as a person does: the subscription is active."""
    announced = runtime.consent.request(slug, email, name, FORM)
    token = next(a.token for a in announced if isinstance(a, ConfirmationRequested))
    runtime.consent.confirm(token, FORM)


def request_only(runtime: Runtime, email: str, slug: str = "cyber-news") -> None:
    runtime.consent.request(slug, email, "", FORM)


def approved_issue(runtime: Runtime, slug: str = "cyber-news") -> int:
    """A draft with an introduction, approved: compiled once and ready to send."""
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, slug)
        curation.update_issue(
            session,
            runtime.clock,
            issue.id,
            curation.IssueChanges(introduction="News of the **clusters** this month."),
        )
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue.id)
        return issue.id


def advancing_sleep(clock: FrozenClock) -> Callable[[float], Any]:
    """A sleep that moves the frozen clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)

    return sleep


@dataclass
class PickyHandler(Pipelining):
    """An SMTP server with trouble on purpose.

    `defer_first`: recipients answered 451 at their first RCPT, accepted later.
    `defer_always`: answered 451 every time. `reject`: answered 550 5.1.1.
    `drop_every`: every N-th MAIL FROM has its connection closed without a reply
    (nothing was accepted).
    """

    defer_first: set[str] = field(default_factory=set)
    defer_always: set[str] = field(default_factory=set)
    reject: set[str] = field(default_factory=set)
    drop_every: int = 0
    received: list[Received] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    mails: int = 0
    drops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        options: Any,
    ) -> str:
        with self.lock:
            self.mails += 1
            drop = self.drop_every and self.mails % self.drop_every == 0
        if drop:
            self.drops += 1
            server.transport.close()
            return "421 4.4.2 closing"  # never reaches the client: the link is gone
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        options: Any,
    ) -> str:
        with self.lock:
            self.seen[address] += 1
            first = self.seen[address] == 1
        if address in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.defer_always or (address in self.defer_first and first):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Ok: queued"

    def count(self, address: str) -> int:
        return sum(1 for r in self.received if address in r.rcpt_tos)


@pytest.fixture(name="picky_server")
def picky_server_fixture() -> Iterator[tuple[str, PickyHandler]]:
    """A PickyHandler server on loopback: (its smtp:// URL, the handler)."""
    handler = PickyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", handler
    finally:
        controller.stop()
