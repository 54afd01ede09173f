"""Access and portability (Art. 15, 20): everything held about a person as one document."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import (
    ConsentEvent,
    ConsentText,
    EventDetail,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
)
from consent.subject_data import SubjectData
from consent.suppression import address_hmac

FORMAT = "mailer.subject-export/1"


def _iso(instant: datetime | None) -> str | None:
    return utc(instant).isoformat().replace("+00:00", "Z") if instant else None


def document(
    session: Session,
    subscriber: Subscriber,
    *,
    secret_key: str,
    now: datetime,
    others: Sequence[SubjectData] = (),
) -> dict[str, Any]:
    """One JSON-ready document with everything held about `subscriber`."""
    texts = {
        (slug, version): (sha, body)
        for slug, version, sha, body in session.execute(
            select(
                MailingList.slug, ConsentText.version, ConsentText.sha256, ConsentText.text
            ).join(ConsentText, ConsentText.list_id == MailingList.id)
        )
    }
    details: dict[int, Any] = {
        event_id: content
        for event_id, content in session.execute(
            select(EventDetail.event_id, EventDetail.content).where(
                EventDetail.subject_ref == subscriber.ref
            )
        )
    }
    events = []
    for event in session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.subject_ref == subscriber.ref)
        .order_by(ConsentEvent.id)
    ):
        shown = texts.get((event.list_slug, event.text_version or 0))
        events.append(
            {
                "id": event.id,
                "occurred_at": _iso(event.occurred_at),
                "kind": event.kind,
                "list": event.list_slug,
                "method": event.method,
                "source": event.source,
                "text_version": event.text_version,
                "text_sha256": event.text_sha256,
                "consent_text": shown[1] if shown else None,
                "data": event.data,
                "personal": details.get(event.id),
                "commitment": event.commitment,
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
        )
    digest = address_hmac(secret_key, subscriber.email)
    suppressions = [
        {"scope": s.scope, "reason": s.reason, "since": _iso(s.created_at)}
        for s in session.scalars(select(Suppression).where(Suppression.address_hmac == digest))
    ]
    document: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": _iso(now),
        "profile": {
            "subject_ref": subscriber.ref,
            "email": subscriber.email,
            "name": subscriber.name,
            "created_at": _iso(subscriber.created_at),
            # With this key anyone can check that `personal` below is what each
            # event's commitment was made over (HMAC-SHA256 of its canonical JSON).
            "commitment_key": subscriber.commitment_key,
        },
        "subscriptions": [_subscription(s) for s in subscriber.subscriptions],
        "consent_events": events,
        "suppressions": suppressions,
    }
    for other in others:
        document[other.name] = other.export(session, subscriber.ref, subscriber.email)
    return document


def _subscription(s: Subscription) -> dict[str, Any]:
    return {
        "list": s.list.slug,
        "list_name": s.list.name,
        "purpose": s.list.purpose,
        "controller": s.list.controller_name,
        "status": s.status.value,
        "requested_at": _iso(s.requested_at),
        "confirmed_at": _iso(s.confirmed_at),
        "ended_at": _iso(s.ended_at),
        "consent_text": {
            "version": s.consent_text.version,
            "sha256": s.consent_text.sha256,
            "text": s.consent_text.text,
        },
    }
