"""The delivery ledger when the database refuses a write: replies the relay accepted are kept.

Another connection really locks what the ledger writes next (SQLite: the file's write
lock; PostgreSQL: the rows still queued, so the move to `sending` is what fails, in the
same statement as the replies kept). The runtime under test waits only briefly
for locks, so the refusal comes at once instead of after the default ten seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text

from consent.clock import FrozenClock
from mailer.app import db
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.delivery import runner
from mailer.delivery.models import Campaign, Delivery
from tests.conftest import SMTPServer
from tests.delivery_fixtures import approved_issue, subscribe

READERS = ["first@example.org", "second@example.org", "third@example.org"]


def short_lock_waits(settings: Settings, clock: FrozenClock) -> Runtime:
    """A runtime whose connections give up on a lock after 300 ms (real settings, not a
    mock). PostgreSQL: `lock_timeout` in the database URL's options, so that every
    connection made from it has it, the ledger's own asyncio connection too; SQLite:
    `busy_timeout`, set as the engine connects."""
    url = settings.database_url
    if url.startswith("postgresql"):
        option = "-clock_timeout%3D300ms"
        if "options=" in url:
            url = url.replace("options=", f"options={option}%20", 1)
        else:
            url += ("&" if "?" in url else "?") + f"options={option}"
    runtime = Runtime.build(settings.model_copy(update={"database_url": url}), clock=clock)
    if runtime.engine.dialect.name == "sqlite":

        @event.listens_for(runtime.engine, "connect")
        def _short(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=300")
            cursor.close()

        runtime.engine.dispose()  # connections made before the listener go
    return runtime


class Blocker:
    """Another connection that locks what the ledger writes next, until it is let go."""

    def __init__(self, url: str, issue_id: int) -> None:
        self.engine = db.make_engine(url)
        self.issue_id = issue_id
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(
                    text(
                        "SELECT id FROM deliveries WHERE issue_id = :issue"
                        " AND status = 'queued' FOR UPDATE"
                    ),
                    {"issue": self.issue_id},
                )
            self.locked.set()
            self.release.wait(timeout=10)
            connection.rollback()

    def start(self) -> None:
        self.thread.start()
        assert self.locked.wait(timeout=10), "the lock was not taken"

    def stop(self) -> None:
        self.release.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.engine.dispose()


class LedgerLog(logging.Handler):
    """The delivery ledger's warnings and errors, as an operator's log shows them."""

    def __init__(self, level: int, then: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.level = level
        self.then = then

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if record.levelno >= self.level:
            self.then()


def send_with_a_lock_after_the_first_copy(
    runtime: Runtime, issue_id: int, smtp_server: SMTPServer, blocker: Blocker, log: LedgerLog
) -> Any:
    """Run the campaign; the relay takes the lock as it accepts the first copy."""
    ledger_log = logging.getLogger("mailer.delivery.ledger")
    ledger_log.addHandler(log)
    handler = smtp_server.handler
    record = handler.handle_DATA

    async def lock_after_the_first_copy(server: object, session: object, envelope: object) -> str:
        answer = await record(server, session, envelope)
        if not blocker.thread.is_alive() and not blocker.locked.is_set():
            await asyncio.to_thread(blocker.start)  # before the relay's 250 goes out
        return answer

    handler.handle_DATA = lock_after_the_first_copy  # type: ignore[method-assign]
    try:
        return asyncio.run(runtime.campaign(issue_id).run())
    finally:
        handler.handle_DATA = record  # type: ignore[method-assign]
        ledger_log.removeHandler(log)
        blocker.stop()


@pytest.fixture
def one_worker(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """A runtime with one copy in flight (one connection, one copy on it), so each reply
    is written with the next move and the tests know which copy meets the failure."""
    monkeypatch.setattr(runner, "IN_FLIGHT_PER_CONNECTION", 1)
    runtime = short_lock_waits(settings.model_copy(update={"concurrency": 1}), clock)
    try:
        yield runtime
    finally:
        runtime.close()


def an_issue_for_the_readers(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> int:
    """The list, the three READERS subscribed, an approved issue; the relay's log empty."""
    make_list()
    for email in READERS:
        subscribe(runtime, email)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    return issue_id


def statuses(runtime: Runtime, issue_id: int) -> dict[str, str]:
    with runtime.sessions() as session:
        rows = session.scalars(select(Delivery).where(Delivery.issue_id == issue_id))
        return {str(d.subscriber_id): d.status for d in rows}


def test_a_refused_group_commit_keeps_the_accepted_replies_and_retries(
    one_worker: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    db_url: str,
) -> None:
    runtime = one_worker
    issue_id = an_issue_for_the_readers(runtime, make_list, smtp_server)
    blocker = Blocker(db_url, issue_id)
    log = LedgerLog(logging.WARNING, then=blocker.release.set)  # let go at the first refusal

    summary = send_with_a_lock_after_the_first_copy(runtime, issue_id, smtp_server, blocker, log)

    assert blocker.locked.is_set()
    assert log.messages, "the ledger was never refused: the test proved nothing"
    assert "trying again" in log.messages[0]
    got = Counter(r for m in smtp_server.received for r in m.rcpt_tos)
    assert got == Counter(READERS)  # each reader exactly one copy
    assert sorted(statuses(runtime, issue_id).values()) == ["sent"] * len(READERS)
    assert summary.state == "finished"
    assert summary.counts == {"sent": len(READERS)}


@pytest.mark.slow
def test_a_ledger_refused_for_good_pauses_the_run_without_losing_a_reply(
    one_worker: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    db_url: str,
) -> None:
    runtime = one_worker
    issue_id = an_issue_for_the_readers(runtime, make_list, smtp_server)
    blocker = Blocker(db_url, issue_id)
    log = LedgerLog(logging.ERROR, then=blocker.release.set)  # held through every retry

    summary = send_with_a_lock_after_the_first_copy(runtime, issue_id, smtp_server, blocker, log)

    assert any("after 3 retries" in m for m in log.messages)
    assert summary.state == "paused"
    assert summary.note.startswith("paused: the delivery ledger could not be written")
    assert summary.counts == {"sent": 1, "queued": 2}
    # The copy the relay accepted is recorded sent; nobody else was sent a copy.
    assert [m.rcpt_tos for m in smtp_server.received] == [[READERS[0]]]
    assert Counter(statuses(runtime, issue_id).values()) == {"sent": 1, "queued": 2}
    with runtime.sessions() as session:
        campaign = session.get(Campaign, issue_id)
        assert campaign is not None and campaign.state == "paused"
        assert "the delivery ledger could not be written" in campaign.note

    resumed = asyncio.run(runtime.campaign(issue_id).run())

    assert resumed.state == "finished" and resumed.counts == {"sent": len(READERS)}
    got = Counter(r for m in smtp_server.received for r in m.rcpt_tos)
    assert got == Counter(READERS)


def test_a_ledger_connection_lost_mid_run_is_made_again_and_no_reply_is_lost(
    one_worker: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    db_url: str,
) -> None:
    """PostgreSQL: the server ends the ledger's own connection (a failover, an admin's
    pg_terminate_backend) while the first copy is in its SMTP transaction; the next group
    commit fails, the ledger makes a new connection and writes the kept reply with the
    next move. Each reader gets exactly one copy."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the ledger's own asyncio connection is PostgreSQL's")
    runtime = one_worker
    issue_id = an_issue_for_the_readers(runtime, make_list, smtp_server)
    killer = db.make_engine(db_url)
    ended: list[int] = []

    def end_the_ledger_connection() -> None:
        with killer.connect() as connection:
            ended.extend(
                connection.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": f"mailer ledger, issue {issue_id}, pid {os.getpid()}"},
                )
            )
            for pid in ended:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    handler = smtp_server.handler
    record = handler.handle_DATA

    async def end_it_during_the_first_copy(
        server: object, session: object, envelope: object
    ) -> str:
        if not ended:
            await asyncio.to_thread(end_the_ledger_connection)
        return await record(server, session, envelope)

    log = LedgerLog(logging.WARNING, then=lambda: None)
    logging.getLogger("mailer.delivery.ledger").addHandler(log)
    handler.handle_DATA = end_it_during_the_first_copy  # type: ignore[method-assign]
    try:
        summary = asyncio.run(runtime.campaign(issue_id).run())
    finally:
        handler.handle_DATA = record  # type: ignore[method-assign]
        logging.getLogger("mailer.delivery.ledger").removeHandler(log)
        killer.dispose()

    assert len(ended) == 1, "the ledger's connection was not found: the test proved nothing"
    assert any("trying again" in m for m in log.messages), log.messages
    got = Counter(r for m in smtp_server.received for r in m.rcpt_tos)
    assert got == Counter(READERS)
    assert sorted(statuses(runtime, issue_id).values()) == ["sent"] * len(READERS)
    assert summary.state == "finished" and summary.counts == {"sent": len(READERS)}
