"""Audit views computed from the ledger: who was subscribed at an instant, on what proof,
and how many were pending, active, withdrawn, suppressed or erased."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.lists import all_lists, get_list
from consent.models import Status, Subscriber
from consent.replay import Replay, Standing, replay


@dataclass(frozen=True)
class Proof:
    """Why one person was on the list: their request, confirmation, text and events.

    `email` and `name` are None once the person was erased: the proof then
    stands by the subject reference alone.
    """

    subject_ref: str
    email: str | None
    name: str | None
    requested_at: datetime | None
    confirmed_at: datetime | None
    method: str
    source: str
    text_version: int | None
    text_sha256: str | None
    event_ids: tuple[int, ...]

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out["event_ids"] = list(self.event_ids)
        return out


@dataclass(frozen=True)
class Counts:
    pending: int = 0
    active: int = 0
    withdrawn: int = 0
    suppressed: int = 0
    erased: int = 0

    def record(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    list_slug: str
    at: datetime
    counts: Counts
    active: tuple[Proof, ...]
    last_event_id: int


def _counts(standings: Iterable[Standing], erased: int) -> Counts:
    tally = {status: 0 for status in Status}
    for standing in standings:
        tally[standing.status] += 1
    return Counts(
        pending=tally[Status.PENDING],
        active=tally[Status.ACTIVE],
        withdrawn=tally[Status.UNSUBSCRIBED],
        suppressed=tally[Status.SUPPRESSED],
        erased=erased,
    )


def _people(session: Session, refs: list[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        for ref, email, name in session.execute(
            select(Subscriber.ref, Subscriber.email, Subscriber.name).where(
                Subscriber.ref.in_(chunk)
            )
        ):
            found[ref] = (email, name)
    return found


def report(session: Session, list_slug: str, at: datetime) -> Report:
    """Who was actively subscribed to the list at `at`, replayed from the ledger."""
    mailing_list = get_list(session, list_slug)
    at = utc(at)
    state: Replay = replay(session, list_slug=mailing_list.slug, until=at)
    standings = state.of_list(mailing_list.slug)
    active = sorted(
        (s for s in standings if s.status == Status.ACTIVE),
        key=lambda s: (s.confirmed_at or at, s.subject_ref),
    )
    people = _people(session, [s.subject_ref for s in active])
    proofs = tuple(
        Proof(
            subject_ref=s.subject_ref,
            email=people[s.subject_ref][0] if s.subject_ref in people else None,
            name=people[s.subject_ref][1] if s.subject_ref in people else None,
            requested_at=s.requested_at,
            confirmed_at=s.confirmed_at,
            method=s.method,
            source=s.source,
            text_version=s.text_version,
            text_sha256=s.text_sha256,
            event_ids=tuple(s.event_ids),
        )
        for s in active
    )
    counts = _counts(standings, state.erased_from.get(mailing_list.slug, 0))
    return Report(mailing_list.slug, at, counts, proofs, state.last_event_id)


def with_people(session: Session, found: Report, limit: int | None = None) -> Report:
    """The report with the people's current address and name (None once erased), for the
    first `limit` proofs (all by default): a report kept for a while never shows an
    address erased since it was replayed."""
    shown = found.active if limit is None else found.active[:limit]
    people = _people(session, [p.subject_ref for p in shown])
    fresh = tuple(
        replace(
            p,
            email=people[p.subject_ref][0] if p.subject_ref in people else None,
            name=people[p.subject_ref][1] if p.subject_ref in people else None,
        )
        for p in shown
    )
    return replace(found, active=fresh + found.active[len(shown) :])


def summary(session: Session, at: datetime) -> dict[str, Counts]:
    """Counts per list at `at`, every list, replayed from the ledger."""
    state = replay(session, until=utc(at))
    by_list: dict[str, list[Standing]] = {m.slug: [] for m in all_lists(session)}
    for (_, slug), standing in state.standings.items():
        by_list.setdefault(slug, []).append(standing)
    return {
        slug: _counts(standings, state.erased_from.get(slug, 0))
        for slug, standings in sorted(by_list.items())
    }


PROOF_FIELDS = [
    "subject_ref",
    "email",
    "name",
    "requested_at",
    "confirmed_at",
    "method",
    "source",
    "text_version",
    "text_sha256",
    "event_ids",
]


def proofs_csv(found: Report) -> str:
    """The report's proofs as CSV: `mailer consent report --format csv` and the workspace's."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PROOF_FIELDS, lineterminator="\n")
    writer.writeheader()
    for proof in found.active:
        cells = {
            k: (" ".join(map(str, v)) if isinstance(v, list) else v)
            for k, v in proof.record().items()
        }
        writer.writerow({k: "" if v is None else v for k, v in cells.items()})
    return buffer.getvalue()
