"""The delivery ledger's group commits, row by row, on SQLite and PostgreSQL.

A group writes the replies kept since the last one and moves the rows asked for to
`sending`; on PostgreSQL both are one statement over arrays. These tests drive the
ledger as the runner does and read the rows back through another connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from consent.models import Subscriber
from mailer.app.wiring import Runtime
from mailer.content.models import Issue
from mailer.delivery.ledger import LedgerWriter, Result
from mailer.delivery.models import Delivery, DeliveryStatus
from tests.delivery_fixtures import FORM, approved_issue, subscribe

READERS = ["ada@example.org", "ben@example.org", "cy@example.org"]
# What a hostile or odd relay may answer: array-literal syntax, quotes, a backslash, a
# NUL-free control character, non-ASCII text and the word NULL.
ODD_REPLY = "queued as {a,\"b\"}\\ NULL, 'x' \t déjà ∞"


def ledger_rows(
    runtime: Runtime, make_list: Callable[..., str]
) -> tuple[LedgerWriter, dict[str, int]]:
    """A list with READERS, an approved issue, one queued row each: the ledger and the
    rows' ids by address."""
    make_list()
    for email in READERS:
        subscribe(runtime, email)
    issue_id = approved_issue(runtime)
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        list_id = issue.list_id
        ids = {}
        for subscriber in session.scalars(select(Subscriber)):
            row = Delivery(
                issue_id=issue_id,
                subscriber_id=subscriber.id,
                status=DeliveryStatus.QUEUED.value,
                attempts=0,
                queued_at=now,
                smtp_reply="",
            )
            session.add(row)
            session.flush()
            ids[subscriber.email] = row.id
    return LedgerWriter(runtime.engine, issue_id, list_id), ids


def rows(runtime: Runtime) -> dict[int, Delivery]:
    with runtime.sessions() as session:
        return {d.id: d for d in session.scalars(select(Delivery))}


def two_groups(
    ledger: LedgerWriter,
    first: list[tuple[int, str, datetime]],
    replies: list[Result],
    second: list[tuple[int, str, datetime]],
) -> tuple[list[bool], list[bool]]:
    """As a campaign drives the ledger: the moves of `first` in one group, the relay's
    `replies` kept, the moves of `second` in the next group (with the replies); closed.
    Which rows each group moved."""

    async def run() -> tuple[list[bool], list[bool]]:
        moved = await asyncio.gather(*(ledger.begin(*move) for move in first))
        for reply in replies:
            ledger.finish(reply)
        then = await asyncio.gather(*(ledger.begin(*move) for move in second))
        await ledger.close()
        return moved, then

    return asyncio.run(run())


def test_a_group_writes_the_kept_replies_and_moves_its_rows(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    ledger, ids = ledger_rows(runtime, make_list)
    ada, ben, cy = (ids[e] for e in READERS)
    now = runtime.clock.now()
    later = now + timedelta(minutes=10)

    first, second = two_groups(
        ledger,
        [(ada, "<1@news.example.org>", now), (ben, "<2@news.example.org>", now)],
        [
            Result(ada, DeliveryStatus.DEFERRED, 451, "try later", None, later),
            Result(ben, DeliveryStatus.SENT, 250, "ok", now),
            Result(ben, DeliveryStatus.SENT, 250, ODD_REPLY, now),  # the last counts
        ],
        # Ada's retry in the same group as her deferral: her reply is written first, so
        # her row is owed a copy again and moves.
        [(ada, "<3@news.example.org>", later), (cy, "<4@news.example.org>", later)],
    )
    assert first == [True, True] and second == [True, True]
    found = rows(runtime)
    assert (found[ada].status, found[ada].attempts) == ("sending", 2)
    assert found[ada].message_id == "<3@news.example.org>"
    assert (found[ada].smtp_code, found[ada].smtp_reply) == (451, "try later")
    assert found[ada].next_attempt_at == later
    assert (found[ben].status, found[ben].smtp_code, found[ben].attempts) == ("sent", 250, 1)
    assert found[ben].smtp_reply == ODD_REPLY
    assert found[ben].sent_at == now and found[ben].message_id == "<2@news.example.org>"
    assert (found[cy].status, found[cy].message_id) == ("sending", "<4@news.example.org>")


def test_a_group_does_not_move_a_row_not_owed_or_whose_consent_ended(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    ledger, ids = ledger_rows(runtime, make_list)
    ada, ben, cy = (ids[e] for e in READERS)
    now = runtime.clock.now()
    runtime.consent.unsubscribe_address("cyber-news", "ben@example.org", FORM)

    first, second = two_groups(
        ledger,
        [(ada, "<1@news.example.org>", now), (ben, "<2@news.example.org>", now)],
        [Result(ada, DeliveryStatus.SENT, 250, "ok", now)],
        # Ada's row is sent (its reply goes with this group): not owed a second copy.
        [(ada, "<3@news.example.org>", now), (cy, "<4@news.example.org>", now)],
    )
    assert first == [True, False] and second == [False, True]
    found = rows(runtime)
    assert (found[ada].status, found[ada].attempts) == ("sent", 1)
    assert found[ada].message_id == "<1@news.example.org>"
    assert (found[ben].status, found[ben].attempts) == ("queued", 0)
    assert found[cy].status == "sending"
