"""Verification of the consent ledger: recompute the chain, and name the first event
that was edited, removed, inserted or reordered, and how."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.ledger import GENESIS, EventRow, commit, event_by, hash_of, head, stream
from consent.models import EventDetail, Subscriber


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
    head_id: int = 0
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return not self.breaks


def _written_as(session: Session, row: EventRow, window: int = 10_000) -> int | None:
    """The id this row's hash was computed under, if not its own: found by following
    `prev_hash` back to an event still in place, or else by trying nearby ids."""
    steps, current, here = 1, row, int(row["id"])
    while steps <= window:
        if current["prev_hash"] == GENESIS:
            candidate = steps
            break
        before = event_by(session, "hash", current["prev_hash"])
        if before is None:
            candidate = 0
            break
        if hash_of(before) == before["hash"]:
            candidate = int(before["id"]) + steps
            break
        current, steps = before, steps + 1
    else:
        candidate = 0
    if candidate and hash_of(row, candidate) == row["hash"]:
        return candidate
    for offset in range(1, window + 1):  # the predecessor is gone too: try ids near by
        for guess in (here + offset, here - offset):
            if guess > 0 and hash_of(row, guess) == row["hash"]:
                return guess
    return None


def _span(first: int, last: int) -> str:
    return f"event {first} is" if first == last else f"events {first} to {last} are"


def _diagnose(session: Session, row: EventRow, prev_id: int, prev_hash: str) -> Break:
    """Name the first bad event, given that `row` does not follow event `prev_id` cleanly."""
    here = int(row["id"])
    intact = hash_of(row) == row["hash"]
    successor = event_by(session, "prev_hash", prev_hash)  # the event written right after prev_id
    if successor is not None and int(successor["id"]) == here:
        if not intact:
            return Break(here, "edited: its content no longer matches its hash")
        return Break(here, f"renumbered: it follows event {prev_id} but carries id {here}")
    last_id, _ = head(session)
    written = None if intact else _written_as(session, row)
    if successor is not None:
        # The true successor stands elsewhere: this row is out of place.
        if written is not None and written != here and written <= last_id:
            return Break(here, f"reordered: it was written as event {written}")
        return Break(here, f"inserted: it is not part of the chain after event {prev_id}")
    if intact:
        if here == prev_id + 1:
            return Break(
                prev_id,
                f"edited: its hash was recomputed, but event {here} still points to the old one",
            )
        return Break(prev_id + 1, f"removed: {_span(prev_id + 1, here - 1)} missing")
    if written is not None and written > here:
        gone = _span(prev_id + 1, prev_id + written - here)
        return Break(prev_id + 1, f"removed: {gone} missing and later events were renumbered")
    if written is not None and written != here:
        return Break(here, f"renumbered: it was written as event {written}")
    if here != prev_id + 1:
        return Break(prev_id + 1, f"removed: {_span(prev_id + 1, here - 1)} missing")
    return Break(here, "edited: its content no longer matches its hash")


def _detail_breaks(session: Session, lo: int, hi: int, commitments: dict[int, str]) -> Break | None:
    """The first event in [lo, hi] whose personal details no longer match its commitment."""
    rows = session.execute(
        select(EventDetail.event_id, EventDetail.content, Subscriber.commitment_key)
        .join(Subscriber, Subscriber.ref == EventDetail.subject_ref)
        .where(EventDetail.event_id.between(lo, hi))
        .order_by(EventDetail.event_id)
    )
    for event_id, content, key in rows:
        expected = commitments.get(int(event_id))
        if expected is None or commit(key, content) != expected:
            return Break(int(event_id), "edited: its personal details do not match its commitment")
    return None


def verify(
    session: Session,
    *,
    anchors: Sequence[tuple[int, str]] = (),
    details: bool = True,
    batch: int = 2000,
) -> Verification:
    """Recompute the chain from the genesis and name the first event that breaks it.

    Rows are read in batches, so memory stays flat. `anchors` are (id, hash)
    pairs recorded earlier outside the database (see `mailer consent verify`):
    they catch a truncated tail or a chain rewritten from some point on, which
    no hash chain can reveal by itself. With `details`, the personal details
    still held are checked against their events' commitments.
    """
    wanted = dict(anchors)
    prev_id, prev_hash, checked = 0, GENESIS, 0
    pending: dict[int, str] = {}
    for row in stream(session, batch):
        here = int(row["id"])
        if row["prev_hash"] != prev_hash or here != prev_id + 1 or hash_of(row) != row["hash"]:
            found = _diagnose(session, row, prev_id, prev_hash)
            return Verification(checked, (found,), prev_id, prev_hash)
        if here in wanted and wanted.pop(here) != row["hash"]:
            problem = "rewritten: its hash is not the one anchored"
            return Verification(checked, (Break(here, problem),), prev_id, prev_hash)
        checked += 1
        prev_id, prev_hash = here, str(row["hash"])
        if details and row["commitment"]:
            pending[here] = str(row["commitment"])
        if details and len(pending) >= batch:
            found_detail = _detail_breaks(session, min(pending), here, pending)
            if found_detail:
                return Verification(checked, (found_detail,), prev_id, prev_hash)
            pending.clear()
    if details and pending:
        found_detail = _detail_breaks(session, min(pending), prev_id, pending)
        if found_detail:
            return Verification(checked, (found_detail,), prev_id, prev_hash)
    if wanted:
        missing = min(wanted)
        problem = "removed: the anchored event is missing (the ledger was cut short)"
        return Verification(checked, (Break(missing, problem),), prev_id, prev_hash)
    return Verification(checked, (), prev_id, prev_hash)
