"""Attack 8: a stranger makes one mailbox receive a confirmation per list. Capped per
address across lists, on the injected clock, answered like any other request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from starlette.testclient import TestClient

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from tests.conftest import CYBER, SMTPServer
from tests.consent_fixtures import sql

VICTIM = "victim@example.org"


def ask(client: TestClient, email: str, slug: str) -> tuple[int, str]:
    answer = client.post(f"/subscribe/{slug}", json={"email": email, "consent": True})
    return answer.status_code, answer.text


def held(runtime: Runtime, email: str) -> tuple[int, int]:
    """Subscriptions and `requested` events held for `email`."""
    subscriptions = sql(
        runtime,
        "SELECT count(*) FROM subscriptions s JOIN subscribers p ON p.id = s.subscriber_id"
        " WHERE p.email = :e",
        e=email,
    )[0][0]
    events = sql(
        runtime,
        "SELECT count(*) FROM consent_events e JOIN subscribers p ON p.ref = e.subject_ref"
        " WHERE p.email = :e AND e.kind = 'requested'",
        e=email,
    )[0][0]
    return subscriptions, events


def test_attack8_confirmation_mails_to_one_address_are_capped_across_lists(
    client: TestClient,
    runtime: Runtime,
    smtp_server: SMTPServer,
    make_list: Callable[..., str],
    clock: FrozenClock,
) -> None:
    cap = runtime.consent.policy.confirmations_per_day
    assert cap == 5  # MAILER_CONFIRMATIONS_PER_DAY's default
    # One list more than the cap (the client's IP may post 10 times a minute).
    slugs = [make_list(CYBER, slug=f"list-{n}", name=f"List {n}") for n in range(cap + 1)]
    answers = {ask(client, VICTIM, slug) for slug in slugs}
    first_time = ask(client, "stranger@example.org", slugs[0])
    assert answers == {first_time} and first_time[0] == 202  # the same answer every time
    assert len(smtp_server.to(VICTIM)) == cap
    assert held(runtime, VICTIM) == (cap, cap)  # nothing stored over the cap
    # Later the same day, asking again for a list already pending is capped too.
    clock.advance(timedelta(hours=1))
    assert ask(client, VICTIM, slugs[0]) == first_time
    assert len(smtp_server.to(VICTIM)) == cap
    # A day after the first mails, the address may be asked for again.
    clock.advance(timedelta(hours=23, seconds=1))
    assert ask(client, VICTIM, slugs[-1]) == first_time
    assert len(smtp_server.to(VICTIM)) == cap + 1
    assert held(runtime, VICTIM) == (cap + 1, cap + 1)
