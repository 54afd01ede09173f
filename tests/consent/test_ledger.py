"""The consent ledger: what each event holds, and that tampering with the rows is caught."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from consent import ledger
from consent.clock import FrozenClock
from consent.models import ConsentEvent, EventDetail, EventKind
from mailer.app.wiring import Runtime
from tests.consent_fixtures import (
    ADA,
    ADA_KEY,
    AGENT,
    ask,
    cli_fixture,  # noqa: F401
    cyber_fixture,  # noqa: F401
    sql,
    subscribe,
    unsubscribe,
    verify,
)


def _chain(runtime: Runtime, count: int) -> list[str]:
    """`count` events without personal data (so ids can be moved freely); their hashes."""
    hashes = []
    with runtime.sessions.begin() as session:
        for n in range(count):
            event = ledger.append(
                session,
                ledger.Entry(
                    kind=EventKind.REQUESTED,
                    list_slug="cyber-news",
                    subject_ref=f"subject-{n}",
                    method="double-opt-in",
                    source="form",
                    occurred_at=runtime.clock.now() + timedelta(seconds=n),
                    text_version=1,
                    data={"n": n},
                ),
            )
            hashes.append(event.hash)
    return hashes


def _move(runtime: Runtime, old: int, new: int) -> None:
    sql(runtime, "UPDATE consent_events SET id = :new WHERE id = :old", old=old, new=new)


def test_b1_every_change_writes_one_event_with_time_list_method_and_text(
    runtime: Runtime, cyber: str, clock: FrozenClock
) -> None:
    subscribe(runtime, ADA, "Ada Lovelace")
    clock.advance(days=3)
    unsubscribe(runtime, ADA)
    with runtime.sessions() as session:
        events = session.query(ConsentEvent).order_by(ConsentEvent.id).all()
        details = {d.event_id: d.content for d in session.query(EventDetail)}
    assert [e.kind for e in events] == ["requested", "confirmed", "withdrawn"]
    first = events[0]
    assert first.list_slug == "cyber-news" and first.method == "double-opt-in"
    assert first.source == "form:/subscribe/cyber-news"
    assert first.text_version == 1 and len(first.text_sha256 or "") == 64
    assert events[2].occurred_at == clock.now()
    # B2: what the chain hashes holds no personal data; the detail holds the truncated IP.
    with runtime.sessions() as session:
        for row in ledger.stream(session):
            assert ADA_KEY not in repr(ledger.content_of(row))
            assert ledger.hash_of(row) == row["hash"]
    assert details[first.id] == {"email": ADA_KEY, "ip": "203.0.113.0", "user_agent": AGENT}
    assert ledger.commit(_key(runtime), details[first.id]) == first.commitment
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


def _key(runtime: Runtime) -> str:
    return str(sql(runtime, "SELECT commitment_key FROM subscribers")[0][0])


def test_b1_a_kind_outside_the_one_list_is_refused_and_nothing_is_written(
    runtime: Runtime, cyber: str
) -> None:
    """Every writer names its event by `EventKind`; a stray spelling never reaches the ledger."""
    with runtime.sessions.begin() as session, pytest.raises(ValueError):
        ledger.append(
            session,
            ledger.Entry(
                kind="text-shown",  # type: ignore[arg-type]
                list_slug="cyber-news",
                subject_ref="subject-0",
                method="double-opt-in",
                source="form",
                occurred_at=runtime.clock.now(),
            ),
        )
    assert sql(runtime, "SELECT count(*) FROM consent_events") == [(0,)]


def test_b1_an_intact_ledger_verifies(runtime: Runtime, cyber: str) -> None:
    subscribe(runtime, ADA)
    ask(runtime, "grace@example.org")
    result = verify(runtime)
    assert result.ok and result.checked == 3 and result.head_id == 3


def test_b1_verification_streams_in_batches(runtime: Runtime, cyber: str) -> None:
    hashes = _chain(runtime, 25)
    result = verify(runtime, batch=4)
    assert result.ok and result.checked == 25 and result.head_hash == hashes[-1]


def test_b1_edit_is_named(runtime: Runtime, cyber: str) -> None:
    _chain(runtime, 6)
    sql(runtime, "UPDATE consent_events SET method = 'forged' WHERE id = 3")
    [found] = verify(runtime).breaks
    assert found.event_id == 3 and found.problem.startswith("edited")


def test_b1_edit_with_recomputed_hash_is_named(runtime: Runtime, cyber: str) -> None:
    _chain(runtime, 6)
    with runtime.sessions() as session:
        row = dict(session.get_one(ConsentEvent, 3).__dict__)
    row["method"] = "forged"
    sql(
        runtime,
        "UPDATE consent_events SET method = 'forged', hash = :h WHERE id = 3",
        h=ledger.hash_of(row),
    )
    [found] = verify(runtime).breaks
    assert found.event_id == 3 and "hash was recomputed" in found.problem


def test_b1_removal_is_named(runtime: Runtime, cyber: str) -> None:
    _chain(runtime, 6)
    sql(runtime, "DELETE FROM consent_events WHERE id IN (3, 4)")
    [found] = verify(runtime).breaks
    assert found.event_id == 3
    assert found.problem == "removed: events 3 to 4 are missing"


def test_b1_removal_with_renumbering_is_named(runtime: Runtime, cyber: str) -> None:
    _chain(runtime, 6)
    sql(runtime, "DELETE FROM consent_events WHERE id = 3")
    for old in (4, 5, 6):
        _move(runtime, old, old - 1)
    [found] = verify(runtime).breaks
    assert found.event_id == 3
    assert found.problem.startswith("removed: event 3 is missing and later events were renumbered")


def _shift_up(runtime: Runtime, start: int, last: int) -> None:
    for old in range(last, start - 1, -1):
        _move(runtime, old, old + 1)


def test_b1_insertion_is_named(runtime: Runtime, cyber: str) -> None:
    _chain(runtime, 6)
    _shift_up(runtime, 3, 6)
    sql(
        runtime,
        "INSERT INTO consent_events (id, occurred_at, kind, list_slug, subject_ref, method,"
        " source, data, prev_hash, hash) VALUES (3, :at, 'confirmed', 'cyber-news', 'forged',"
        " 'double-opt-in', 'form', '{}', :prev, :hash)",
        at=runtime.clock.now().replace(tzinfo=None),
        prev=secrets.token_hex(32),
        hash=secrets.token_hex(32),
    )
    [found] = verify(runtime).breaks
    assert found.event_id == 3 and found.problem.startswith("inserted")


def test_b1_insertion_with_a_well_formed_row_is_named(runtime: Runtime, cyber: str) -> None:
    """A forger who hashes the row properly still cannot make it follow event 2."""
    hashes = _chain(runtime, 6)
    _shift_up(runtime, 3, 6)
    forged = {
        "id": 3,
        "occurred_at": runtime.clock.now(),
        "kind": "confirmed",
        "list_slug": "cyber-news",
        "subject_ref": "forged",
        "method": "double-opt-in",
        "source": "form",
        "text_version": None,
        "text_sha256": None,
        "data": {},
        "commitment": None,
        "prev_hash": hashes[-1],  # event 2's hash is taken: prev_hash is unique
    }
    sql(
        runtime,
        "INSERT INTO consent_events (id, occurred_at, kind, list_slug, subject_ref, method,"
        " source, data, prev_hash, hash) VALUES (3, :at, 'confirmed', 'cyber-news', 'forged',"
        " 'double-opt-in', 'form', '{}', :prev, :hash)",
        at=runtime.clock.now().replace(tzinfo=None),
        prev=forged["prev_hash"],
        hash=ledger.hash_of(forged),
    )
    [found] = verify(runtime).breaks
    assert found.event_id == 3 and found.problem.startswith("inserted")


def test_b1_reordering_is_named(runtime: Runtime, cyber: str) -> None:
    _chain(runtime, 6)
    _move(runtime, 3, 99)
    _move(runtime, 4, 3)
    _move(runtime, 99, 4)
    [found] = verify(runtime).breaks
    assert found.event_id == 3
    assert found.problem == "reordered: it was written as event 4"


def test_b1_truncation_is_caught_by_an_anchor(runtime: Runtime, cyber: str) -> None:
    hashes = _chain(runtime, 6)
    anchor = (6, hashes[-1])
    assert verify(runtime, anchors=[anchor]).ok
    sql(runtime, "DELETE FROM consent_events WHERE id = 6")
    assert verify(runtime).ok  # a hash chain alone cannot see its tail cut off
    [found] = verify(runtime, anchors=[anchor]).breaks
    assert found.event_id == 6 and found.problem.startswith("removed")


def test_b1_rewritten_chain_is_caught_by_an_anchor(runtime: Runtime, cyber: str) -> None:
    hashes = _chain(runtime, 4)
    assert not verify(runtime, anchors=[(2, hashes[0])]).ok
    assert verify(runtime, anchors=[(2, hashes[1])]).ok


def test_b1_edited_personal_details_are_named(runtime: Runtime, cyber: str) -> None:
    subscribe(runtime, ADA)
    sql(
        runtime,
        "UPDATE consent_event_details SET content = :c WHERE event_id = 2",
        c='{"email": "mallory@example.org"}',
    )
    [found] = verify(runtime).breaks
    assert found.event_id == 2 and "personal details" in found.problem


@pytest.mark.parametrize(
    "tamper,named",
    [
        ("UPDATE consent_events SET kind = 'confirmed' WHERE id = 2", "event 2: edited"),
        ("DELETE FROM consent_events WHERE id = 2", "event 2: removed"),
    ],
)
def test_b1_cli_verify_exit_codes(runtime: Runtime, cyber: str, cli, tamper, named) -> None:
    _chain(runtime, 4)
    held = cli("consent", "verify")
    assert held.exit_code == 0, held.output
    assert "ledger holds: 4 event(s) verified; head 4:" in held.stdout
    sql(runtime, tamper)
    broken = cli("consent", "verify")
    assert broken.exit_code == 1
    assert named in broken.stderr


def test_b1_cli_verify_anchor_and_state(runtime: Runtime, cyber: str, cli) -> None:
    subscribe(runtime, ADA)
    held = cli("consent", "verify", "--json", "--state")
    assert held.exit_code == 0, held.output
    import json

    head = json.loads(held.stdout)["head"]
    assert cli("consent", "verify", "--anchor", f"{head['id']}:{head['hash']}").exit_code == 0
    assert cli("consent", "verify", "--anchor", "nonsense").exit_code == 2
    # Someone marks a subscriber active behind the ledger's back: --state sees it.
    sql(runtime, "UPDATE subscriptions SET status = 'unsubscribed'")
    drifted = cli("consent", "verify", "--state")
    assert drifted.exit_code == 1
    assert "stored unsubscribed (text v1), ledger says active (text v1)" in drifted.stderr
