"""The operations log: who changed what, when; written in the transaction of the change.

Rows are only ever inserted: no code here (or anywhere) updates or deletes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.accounts.models import Operation


@dataclass(frozen=True)
class Actor:
    """Who acts: a workspace user (email and role), or the command line."""

    email: str
    role: str


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]


def record(
    session: Session,
    actor: Actor,
    at: datetime,
    action: str,
    object_type: str,
    object_id: object,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        Operation(
            at=at,
            actor=actor.email,
            role=actor.role,
            action=action,
            object_type=object_type,
            object_id=str(object_id)[:100],
            detail=dict(detail or {}),
        )
    )


def page(
    session: Session,
    before: int | None = None,
    limit: int = 50,
    object_type: str | None = None,
    object_id: str | None = None,
) -> list[Entry]:
    """The newest operations first, `limit` at a time, below id `before` (keyset)."""
    query = select(Operation).order_by(Operation.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Operation.id < before)
    if object_type is not None:
        query = query.where(Operation.object_type == object_type)
    if object_id is not None:
        query = query.where(Operation.object_id == object_id)
    return [
        Entry(o.id, o.at, o.actor, o.role, o.action, o.object_type, o.object_id, o.detail)
        for o in session.scalars(query)
    ]
