"""The append-only, hash-chained consent ledger: canonical form, append, verify.

Each event's hash is SHA-256 over the canonical JSON of its fields (including its
id and the previous event's hash), so editing, removing, inserting or reordering
rows breaks the chain. Personal data never enters the hash: it is committed by an
HMAC under the subject's own key, and erasure deletes key and data together, so
the chain still verifies afterwards while the commitment no longer links to anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import ConsentEvent, EventDetail

GENESIS = "0" * 64
_PG_LEDGER_LOCK = 727_001  # advisory lock key serialising appends on PostgreSQL


def _iso(instant: datetime) -> str:
    return utc(instant).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, ASCII, datetimes as ISO-8601 UTC."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return _iso(obj)
        raise TypeError(f"not canonicalisable: {type(obj).__name__}")

    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=default
    ).encode("ascii")


def commit(key_hex: str, personal: Mapping[str, Any]) -> str:
    """A keyed commitment to personal data: HMAC-SHA256 under the subject's key."""
    return hmac.new(bytes.fromhex(key_hex), canonical(dict(personal)), hashlib.sha256).hexdigest()


def event_content(event: ConsentEvent) -> dict[str, Any]:
    """The fields of an event that its hash covers, in canonical order."""
    return {
        "id": event.id,
        "occurred_at": _iso(event.occurred_at),
        "kind": event.kind,
        "list": event.list_slug,
        "subject": event.subject_ref,
        "method": event.method,
        "source": event.source,
        "text_version": event.text_version,
        "text_sha256": event.text_sha256,
        "data": event.data or {},
        "commitment": event.commitment,
        "prev_hash": event.prev_hash,
    }


def event_hash(event: ConsentEvent) -> str:
    return hashlib.sha256(canonical(event_content(event))).hexdigest()


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(ConsentEvent.id, ConsentEvent.hash).order_by(ConsentEvent.id.desc()).limit(1)
    ).first()
    if row is None:
        return 0, GENESIS
    return int(row[0]), str(row[1])


def lock_ledger(session: Session) -> None:
    """Serialise appenders for the rest of the transaction (PostgreSQL; SQLite locks anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LEDGER_LOCK})


@dataclass(frozen=True)
class Entry:
    """What a caller says about one change of consent."""

    kind: str
    list_slug: str
    subject_ref: str
    method: str
    source: str
    occurred_at: datetime
    text_version: int | None = None
    text_sha256: str | None = None
    data: Mapping[str, Any] | None = None
    personal: Mapping[str, Any] | None = None
    commitment_key: str | None = None


def append(session: Session, entry: Entry) -> ConsentEvent:
    """Append one event at the head of the chain, inside the caller's transaction.

    The chain is linear because `prev_hash` is unique: two appenders racing for
    the same head cannot both commit.
    """
    lock_ledger(session)
    session.flush()
    last_id, last_hash = _head(session)
    personal = dict(entry.personal) if entry.personal else None
    if personal is not None and not entry.commitment_key:
        raise ValueError("personal data needs the subject's commitment key")
    event = ConsentEvent(
        id=last_id + 1,
        occurred_at=utc(entry.occurred_at),
        kind=entry.kind,
        list_slug=entry.list_slug,
        subject_ref=entry.subject_ref,
        method=entry.method,
        source=entry.source[:200],
        text_version=entry.text_version,
        text_sha256=entry.text_sha256,
        data=dict(entry.data or {}),
        commitment=commit(entry.commitment_key, personal)
        if personal is not None and entry.commitment_key
        else None,
        prev_hash=last_hash,
    )
    event.hash = event_hash(event)
    session.add(event)
    if personal is not None:
        session.add(EventDetail(event_id=event.id, subject_ref=entry.subject_ref, content=personal))
    session.flush()
    return event


@dataclass(frozen=True)
class Break:
    """Where and how the chain fails to hold."""

    event_id: int
    problem: str

    def __str__(self) -> str:
        return f"event {self.event_id}: {self.problem}"


@dataclass(frozen=True)
class Verification:
    checked: int
    breaks: tuple[Break, ...]

    @property
    def ok(self) -> bool:
        return not self.breaks


def _events(session: Session, batch: int = 2000) -> Iterator[ConsentEvent]:
    last = -1
    while True:
        rows = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.id > last)
            .order_by(ConsentEvent.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def verify(session: Session, commitment_keys: Mapping[str, str] | None = None) -> Verification:
    """Recompute the chain from the genesis and name the first event that breaks it.

    A row whose own hash no longer matches its content was edited; a row whose
    `prev_hash` is not its predecessor's hash follows a removal, an insertion or
    a reordering, told apart by where its `prev_hash` points.
    """
    prev_hash = GENESIS
    prev_id = 0
    checked = 0
    breaks: list[Break] = []
    details: dict[int, dict[str, Any]] = {}
    if commitment_keys:
        for detail in session.scalars(select(EventDetail)):
            details[detail.event_id] = dict(detail.content)
    for event in _events(session):
        checked += 1
        if event_hash(event) != event.hash:
            breaks.append(Break(event.id, "edited: its content does not match its hash"))
            return Verification(checked, tuple(breaks))
        if event.prev_hash != prev_hash:
            pointed = session.scalar(
                select(ConsentEvent.id).where(ConsentEvent.hash == event.prev_hash)
            )
            if pointed is not None:
                problem = f"reordered or inserted: it follows event {pointed}, not event {prev_id}"
            elif event.id != prev_id + 1:
                problem = f"removed: the event(s) before it (after event {prev_id}) are missing"
            else:
                problem = "inserted or edited: it does not follow any event of the chain"
            breaks.append(Break(event.id, problem))
            return Verification(checked, tuple(breaks))
        if event.id != prev_id + 1:
            breaks.append(Break(event.id, f"renumbered: expected id {prev_id + 1}"))
            return Verification(checked, tuple(breaks))
        if commitment_keys and event.id in details and event.commitment:
            key = commitment_keys.get(event.subject_ref)
            if key is not None and commit(key, details[event.id]) != event.commitment:
                breaks.append(Break(event.id, "edited: its personal data does not match"))
                return Verification(checked, tuple(breaks))
        prev_hash = event.hash
        prev_id = event.id
    return Verification(checked, tuple(breaks))
