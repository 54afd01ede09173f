"""The state of every subscription as the ledger tells it, at any instant, and its drift
from the stored state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consent import ledger
from consent.clock import utc
from consent.models import (
    ConsentEvent,
    ConsentText,
    EventKind,
    MailingList,
    Status,
    Subscriber,
    Subscription,
)


@dataclass
class Standing:
    """One subject on one list, as derived from the ledger, with the proof behind it."""

    subject_ref: str
    list_slug: str
    status: Status
    text_version: int | None
    text_sha256: str | None
    requested_at: datetime | None
    confirmed_at: datetime | None = None
    ended_at: datetime | None = None
    method: str = ""
    source: str = ""
    event_ids: list[int] = field(default_factory=list)


@dataclass
class Replay:
    """Standings by (subject, list); subjects erased; the last event applied."""

    standings: dict[tuple[str, str], Standing] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    erased_from: dict[str, int] = field(default_factory=dict)  # list -> subjects erased off it
    last_event_id: int = 0

    def of_list(self, list_slug: str) -> list[Standing]:
        return [s for (_, slug), s in self.standings.items() if slug == list_slug]


def _consented_at(event: ledger.EventRow) -> datetime:
    raw = (event["data"] or {}).get("consented_at")
    if isinstance(raw, str):
        try:
            return utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            pass
    return utc(event["occurred_at"])


def _fresh(event: ledger.EventRow, status: Status, at: datetime) -> Standing:
    return Standing(
        subject_ref=event["subject_ref"],
        list_slug=event["list_slug"],
        status=status,
        text_version=event["text_version"],
        text_sha256=event["text_sha256"],
        requested_at=at,
        method=event["method"],
        source=event["source"],
        event_ids=[int(event["id"])],
    )


def _apply(state: Replay, event: ledger.EventRow) -> None:
    kind = event["kind"]
    key = (event["subject_ref"], event["list_slug"])
    at = utc(event["occurred_at"])
    current = state.standings.get(key)
    if kind == EventKind.ERASED:
        ref = event["subject_ref"]
        for k in [k for k in state.standings if k[0] == ref]:
            del state.standings[k]
            state.erased_from[k[1]] = state.erased_from.get(k[1], 0) + 1
        state.erased.add(ref)
    elif kind in (EventKind.REQUESTED, EventKind.REPERMISSION_REQUESTED):
        state.standings[key] = _fresh(event, Status.PENDING, at)
    elif kind == EventKind.IMPORTED:
        consented = _consented_at(event)
        standing = _fresh(event, Status.ACTIVE, consented)
        standing.confirmed_at = consented
        if current is not None and current.status == Status.PENDING:
            standing.event_ids = [*current.event_ids, int(event["id"])]
        state.standings[key] = standing
    elif kind == EventKind.PURGED:
        state.standings.pop(key, None)
    elif current is None and kind == EventKind.SUPPRESSED:
        state.standings[key] = _fresh(event, Status.SUPPRESSED, at)
        state.standings[key].requested_at = None
        state.standings[key].ended_at = at
    elif current is not None and kind in _MOVES:
        _MOVES[kind](current, event, at)
        current.event_ids.append(int(event["id"]))


def _confirm(s: Standing, event: ledger.EventRow, at: datetime) -> None:
    s.status, s.confirmed_at = Status.ACTIVE, at
    s.text_version, s.text_sha256 = event["text_version"], event["text_sha256"]


def _end(status: Status) -> Callable[[Standing, ledger.EventRow, datetime], None]:
    def move(s: Standing, event: ledger.EventRow, at: datetime) -> None:
        s.status, s.ended_at = status, at

    return move


_MOVES: dict[str, Callable[[Standing, ledger.EventRow, datetime], None]] = {
    EventKind.CONFIRMED: _confirm,
    EventKind.WITHDRAWN: _end(Status.UNSUBSCRIBED),
    EventKind.SUPPRESSED: _end(Status.SUPPRESSED),
}


def replay(
    session: Session,
    *,
    list_slug: str | None = None,
    subject_ref: str | None = None,
    until: datetime | None = None,
) -> Replay:
    """Apply the ledger's events in order, up to and including `until`.

    Restricted to one list (and the person-wide events) or to one subject, it
    reads only their events; memory grows with the subscriptions, not the events.
    """
    conditions = []
    if list_slug is not None:
        conditions.append(
            or_(ConsentEvent.list_slug == list_slug, ConsentEvent.list_slug == ledger.SUBJECT_WIDE)
        )
    if subject_ref is not None:
        conditions.append(ConsentEvent.subject_ref == subject_ref)
    if until is not None:
        conditions.append(ConsentEvent.occurred_at <= utc(until))
    where = None
    for condition in conditions:
        where = condition if where is None else where & condition
    return replay_events(ledger.stream(session, where=where))


def replay_events(events: Iterable[ledger.EventRow]) -> Replay:
    """The state that events (rows in ledger order) leave: the one rule of which events
    grant, end or remove consent, for `replay` and for callers that hold the events."""
    state = Replay()
    for event in events:
        _apply(state, event)
        state.last_event_id = int(event["id"])
    return state


def standing_at(
    events: Iterable[ledger.EventRow], subject_ref: str, list_slug: str, moment: datetime
) -> Standing | None:
    """One subject's standing on one list at `moment`, from that subject's events in ledger
    order: what `replay(session, subject_ref=..., until=moment)` finds, without reading."""
    moment = utc(moment)
    state = replay_events(e for e in events if utc(e["occurred_at"]) <= moment)
    return state.standings.get((subject_ref, list_slug))


@dataclass(frozen=True)
class Drift:
    """A subscription whose stored state is not what the ledger says."""

    subject_ref: str
    list_slug: str
    stored: tuple[str, int | None] | None
    derived: tuple[str, int | None] | None

    def __str__(self) -> str:
        def show(v: tuple[str, int | None] | None) -> str:
            return "nothing" if v is None else f"{v[0]} (text v{v[1]})"

        return (
            f"subject {self.subject_ref} on {self.list_slug}: stored {show(self.stored)},"
            f" ledger says {show(self.derived)}"
        )


def stored_states(session: Session) -> dict[tuple[str, str], tuple[str, int | None]]:
    rows = session.execute(
        select(Subscriber.ref, MailingList.slug, Subscription.status, ConsentText.version)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .join(ConsentText, ConsentText.id == Subscription.consent_text_id)
    )
    return {(ref, slug): (Status(status).value, version) for ref, slug, status, version in rows}


def derived_states(state: Replay) -> dict[tuple[str, str], tuple[str, int | None]]:
    return {k: (s.status.value, s.text_version) for k, s in state.standings.items()}


def drift(session: Session, limit: int = 100) -> list[Drift]:
    """Where the subscriptions table and the ledger disagree (status, text version)."""
    stored = stored_states(session)
    derived = derived_states(replay(session))
    found: Iterable[tuple[str, str]] = sorted(set(stored) | set(derived))
    return [
        Drift(k[0], k[1], stored.get(k), derived.get(k))
        for k in found
        if stored.get(k) != derived.get(k)
    ][:limit]
