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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import RowMapping, Table, insert, select, text
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import ConsentEvent, EventDetail, EventKind

GENESIS = "0" * 64
SUBJECT_WIDE = "*"  # the list of events about a person rather than one list (erased, rectified)
# Advisory lock serialising appends on PostgreSQL: (this schema's hash, this key), so two
# deployments sharing one database in separate schemas keep separate ledgers and locks.
_PG_LEDGER_LOCK = 727_001
EventRow = Mapping[Any, Any]  # an event as a row mapping (RowMapping or a dict)
_EVENTS = cast(Table, ConsentEvent.__table__)
_DETAILS = cast(Table, EventDetail.__table__)


def iso(instant: datetime) -> str:
    """The canonical text of an instant: ISO-8601 UTC with microseconds and a Z."""
    return utc(instant).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, ASCII, datetimes as ISO-8601 UTC."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return iso(obj)
        raise TypeError(f"not canonicalisable: {type(obj).__name__}")

    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=default
    ).encode("ascii")


def commit(key_hex: str, personal: Mapping[str, Any]) -> str:
    """A keyed commitment to personal data: HMAC-SHA256 under the subject's key."""
    return hmac.new(bytes.fromhex(key_hex), canonical(dict(personal)), hashlib.sha256).hexdigest()


def content_of(row: EventRow, event_id: int | None = None) -> dict[str, Any]:
    """The fields of an event (a row mapping) that its hash covers."""
    return {
        "id": row["id"] if event_id is None else event_id,
        "occurred_at": iso(row["occurred_at"]),
        "kind": row["kind"],
        "list": row["list_slug"],
        "subject": row["subject_ref"],
        "method": row["method"],
        "source": row["source"],
        "text_version": row["text_version"],
        "text_sha256": row["text_sha256"],
        "data": row["data"] or {},
        "commitment": row["commitment"],
        "prev_hash": row["prev_hash"],
    }


def hash_of(row: EventRow, event_id: int | None = None) -> str:
    return hashlib.sha256(canonical(content_of(row, event_id))).hexdigest()


def head(session: Session) -> tuple[int, str]:
    """The id and hash of the newest event, or (0, GENESIS) for an empty ledger."""
    row = session.execute(
        select(ConsentEvent.id, ConsentEvent.hash).order_by(ConsentEvent.id.desc()).limit(1)
    ).first()
    if row is None:
        return 0, GENESIS
    return int(row[0]), str(row[1])


def lock_ledger(session: Session) -> None:
    """Serialise appenders for the rest of the transaction (PostgreSQL; SQLite locks anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(current_schema()), :k)"),
            {"k": _PG_LEDGER_LOCK},
        )


@dataclass(frozen=True)
class Entry:
    """What a caller says about one change of consent."""

    kind: EventKind
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


def _link(entry: Entry, event_id: int, prev_hash: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event row (hash included) and its detail row (empty without personal data)."""
    personal = dict(entry.personal) if entry.personal else None
    if personal is not None and not entry.commitment_key:
        raise ValueError("personal data needs the subject's commitment key")
    row: dict[str, Any] = {
        "id": event_id,
        "occurred_at": utc(entry.occurred_at),
        "kind": EventKind(entry.kind).value,  # a kind outside the enum is refused
        "list_slug": entry.list_slug,
        "subject_ref": entry.subject_ref,
        "method": entry.method[:32],
        "source": entry.source[:200],
        "text_version": entry.text_version,
        "text_sha256": entry.text_sha256,
        "data": dict(entry.data or {}),
        "commitment": commit(entry.commitment_key, personal)
        if personal is not None and entry.commitment_key
        else None,
        "prev_hash": prev_hash,
    }
    row["hash"] = hash_of(row)
    detail = (
        {"event_id": event_id, "subject_ref": entry.subject_ref, "content": personal}
        if personal is not None
        else {}
    )
    return row, detail


def append(session: Session, entry: Entry) -> ConsentEvent:
    """Append one event at the head of the chain, inside the caller's transaction.

    The chain is linear because `prev_hash` is unique: two appenders racing for
    the same head cannot both commit.
    """
    lock_ledger(session)
    session.flush()
    last_id, last_hash = head(session)
    row, detail = _link(entry, last_id + 1, last_hash)
    event = ConsentEvent(**row)
    session.add(event)
    if detail:
        session.add(EventDetail(**detail))
    session.flush()
    return event


def append_many(session: Session, entries: Sequence[Entry]) -> list[int]:
    """Append events in order with one statement per table (bulk import); their ids."""
    if not entries:
        return []
    lock_ledger(session)
    session.flush()
    last_id, last_hash = head(session)
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for entry in entries:
        last_id += 1
        row, detail = _link(entry, last_id, last_hash)
        last_hash = row["hash"]
        rows.append(row)
        if detail:
            details.append(detail)
    session.execute(insert(_EVENTS), rows)
    if details:
        session.execute(insert(_DETAILS), details)
    return [r["id"] for r in rows]


# -- reading ---------------------------------------------------------------------


def stream(session: Session, batch: int = 2000, where: Any = None) -> Iterator[RowMapping]:
    """Every event row in id order, read in batches (memory stays flat)."""
    last = 0
    while True:
        query = select(_EVENTS).where(_EVENTS.c.id > last).order_by(_EVENTS.c.id).limit(batch)
        if where is not None:
            query = query.where(where)
        rows = session.execute(query).mappings().all()
        if not rows:
            return
        yield from rows
        last = int(rows[-1]["id"])


def event_by(session: Session, column: str, value: str) -> RowMapping | None:
    """The event whose `column` (hash or prev_hash) has this value, if any."""
    return session.execute(select(_EVENTS).where(_EVENTS.c[column] == value)).mappings().first()
