"""Retention: pending requests nobody confirmed are purged, and only those."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from consent import replay, tokens
from consent.clock import FrozenClock
from consent.models import ConsentEvent, EventDetail, Subscriber
from consent.retention import purge_pending
from mailer.app.wiring import Runtime
from tests.consent_fixtures import (
    FORM,
    ask,
    cli_fixture,  # noqa: F401
    cyber_fixture,  # noqa: F401
    sql,
    subscribe,
    verify,
)


def _people(runtime: Runtime) -> set[str]:
    return {e for (e,) in sql(runtime, "SELECT email FROM subscribers")}


def test_i1_purge_removes_exactly_the_stale_pending_rows(
    runtime: Runtime, make_list, clock: FrozenClock
) -> None:
    make_list()
    make_list(slug="webinars", name="Webinars")
    ada_token = ask(runtime, "ada@example.org")  # pending, will be stale
    subscribe(runtime, "bob@example.org")  # active: stays
    ask(runtime, "carol@example.org")  # stale on cyber-news ...
    subscribe(runtime, "carol@example.org", slug="webinars")  # ... but active elsewhere
    clock.advance(days=3)
    ask(runtime, "dan@example.org")  # pending, still fresh
    clock.advance(days=5)
    dry = purge_pending(runtime.consent, dry_run=True)
    assert (dry.subscriptions, dry.dry_run) == (2, True)
    assert len(_people(runtime)) == 4
    result = purge_pending(runtime.consent)
    assert (result.subscriptions, result.subscribers) == (2, 1)
    assert _people(runtime) == {"bob@example.org", "carol@example.org", "dan@example.org"}
    rows = sql(
        runtime,
        "SELECT s.email, l.slug, x.status FROM subscriptions x"
        " JOIN subscribers s ON s.id = x.subscriber_id JOIN lists l ON l.id = x.list_id",
    )
    assert sorted(rows) == [
        ("bob@example.org", "cyber-news", "active"),
        ("carol@example.org", "webinars", "active"),
        ("dan@example.org", "cyber-news", "pending"),
    ]
    with runtime.sessions() as session:
        purged = session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "purged")).all()
        carol = session.scalar(select(Subscriber).where(Subscriber.email == "carol@example.org"))
        assert carol is not None
        carol_details = session.scalars(
            select(ConsentEvent.list_slug)
            .join(EventDetail, EventDetail.event_id == ConsentEvent.id)
            .where(EventDetail.subject_ref == carol.ref)
        ).all()
    assert len(purged) == 2
    assert all(e.commitment is None and e.method == "retention" for e in purged)
    assert all(
        e.data == {"pending_since": "2026-01-05T09:00:00.000000Z", "ttl_days": 7} for e in purged
    )
    assert set(carol_details) == {"webinars"}  # the purged request's details are gone
    assert verify(runtime).ok
    with runtime.sessions() as session:
        assert replay.drift(session) == []
    assert purge_pending(runtime.consent).subscriptions == 0  # safe to run again
    assert ada_token is not None
    with pytest.raises(tokens.TokenExpired):
        runtime.consent.confirm(ada_token, FORM)


def test_i1_purge_honours_the_ttl_boundary(runtime: Runtime, cyber: str, clock) -> None:
    ask(runtime, "ada@example.org")
    clock.advance(days=7)
    assert purge_pending(runtime.consent).subscriptions == 0  # exactly 7 days: not yet
    clock.advance(seconds=1)
    assert purge_pending(runtime.consent).subscriptions == 1


def test_i1_cli_purge(runtime: Runtime, cyber: str, cli) -> None:
    ask(runtime, "ada@example.org")  # on the frozen clock, months before the CLI's now
    dry = cli("consent", "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)[0]["subscriptions"] == 1
    done = cli("consent", "purge")
    assert done.exit_code == 0 and "purged 1 pending subscription(s)" in done.stdout
    assert _people(runtime) == set()
    assert cli("consent", "verify").exit_code == 0
