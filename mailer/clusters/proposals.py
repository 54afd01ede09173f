"""Proposals from the public form: a new cluster, or a change to one, until an editor decides.

Nothing proposed reaches the catalogue before an editor accepts it. A proposal
holds no personal data: the form asks for the cluster's facts and an optional
note, never who sent it. The queue is capped, so a flood cannot grow it forever.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput, clean_text
from mailer.clusters.catalogue import (
    Changes,
    ClusterExists,
    ClusterSpec,
    by_name,
    edit,
    spec_of,
    upsert,
)
from mailer.clusters.models import ClusterProposal

MAX_PENDING = 500
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"


class QueueFull(Exception):
    """Too many proposals wait already; the form asks to come back later."""


class UnknownProposal(InvalidInput, LookupError):
    def __init__(self, proposal_id: int) -> None:
        super().__init__(
            f"no pending proposal {proposal_id} (see `mailer clusters proposals list`)"
        )


def propose(session: Session, now: datetime, spec: ClusterSpec, note: str = "") -> ClusterProposal:
    """Queue `spec`: a change when a cluster of that name exists, else a new cluster."""
    spec = spec.checked()
    note = clean_text(note, "the note", 2000, required=False)
    waiting = session.scalar(
        select(func.count()).select_from(ClusterProposal).where(ClusterProposal.status == PENDING)
    )
    if int(waiting or 0) >= MAX_PENDING:
        raise QueueFull("many proposals are waiting for the editors; please try again later")
    existing = by_name(session, spec.name)
    fields = asdict(spec)
    fields["sectors"] = list(spec.sectors)
    proposal = ClusterProposal(
        kind="change" if existing is not None else "new",
        cluster_id=existing.id if existing is not None else None,
        name=spec.name,
        fields=fields,
        note=note,
        status=PENDING,
        reason="",
        created_at=now,
    )
    session.add(proposal)
    session.flush()
    return proposal


def pending(session: Session) -> list[ClusterProposal]:
    return list(
        session.scalars(
            select(ClusterProposal)
            .where(ClusterProposal.status == PENDING)
            .order_by(ClusterProposal.id)
        )
    )


def _pending(session: Session, proposal_id: int) -> ClusterProposal:
    proposal = session.get(ClusterProposal, proposal_id)
    if proposal is None or proposal.status != PENDING:
        raise UnknownProposal(proposal_id)
    return proposal


def _spec(proposal: ClusterProposal) -> ClusterSpec:
    fields = dict(proposal.fields)
    fields["sectors"] = tuple(fields.get("sectors") or ())
    return ClusterSpec(**fields)


def accept(session: Session, now: datetime, proposal_id: int) -> str:
    """Put the proposal into the catalogue; "added" or "updated" (or "unchanged")."""
    proposal = _pending(session, proposal_id)
    spec = _spec(proposal)
    target = by_name(session, spec.name)
    if proposal.kind == "new" and target is not None:
        raise ClusterExists(f"a cluster named {spec.name!r} was added meanwhile")
    if proposal.kind == "change" and target is None:
        raise InvalidInput(f"the cluster {spec.name!r} is no longer in the catalogue")
    if target is None:
        outcome = upsert(session, now, spec)
    else:
        changed = _changed(spec_of(target), spec)
        if changed:
            edit(session, now, target.name, Changes(**changed))
        outcome = "updated" if changed else "unchanged"
    proposal.status, proposal.decided_at = ACCEPTED, now
    return outcome


def changes(session: Session, proposal: ClusterProposal) -> list[tuple[str, Any, Any]]:
    """What accepting would change, field by field: (field, now, proposed). For a new
    cluster every field it sets is a change from nothing."""
    spec = _spec(proposal)
    target = by_name(session, spec.name)
    if target is None:
        return [(f, None, v) for f, v in asdict(spec).items() if v not in ("", (), False)]
    before = spec_of(target)
    return [(f, getattr(before, f), v) for f, v in _changed(before, spec).items()]


def _changed(before: ClusterSpec, after: ClusterSpec) -> dict[str, Any]:
    return {k: v for k, v in asdict(after).items() if asdict(before)[k] != v}


def reject(session: Session, now: datetime, proposal_id: int, reason: str = "") -> None:
    proposal = _pending(session, proposal_id)
    proposal.status, proposal.decided_at = REJECTED, now
    proposal.reason = clean_text(reason, "the reason", 1000, required=False)


def record(proposal: ClusterProposal) -> dict[str, Any]:
    return {
        "id": proposal.id,
        "kind": proposal.kind,
        "name": proposal.name,
        "fields": proposal.fields,
        "note": proposal.note,
        "status": proposal.status,
        "created_at": proposal.created_at.isoformat(),
    }
