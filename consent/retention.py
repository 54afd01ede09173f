"""Retention: pending requests nobody confirmed are purged with their personal data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session, selectinload

from consent import ledger
from consent.models import ConsentEvent, EventDetail, EventKind, Status, Subscriber, Subscription
from consent.workflow import ConsentService


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    subscriptions: int
    subscribers: int
    dry_run: bool = False


def _stale(cutoff: datetime) -> ColumnElement[bool]:
    return (Subscription.status == Status.PENDING) & (Subscription.requested_at < cutoff)


def purge_pending(
    service: ConsentService,
    ttl: timedelta | None = None,
    *,
    dry_run: bool = False,
    batch: int = 500,
) -> PurgeResult:
    """Delete pending subscriptions requested more than `ttl` ago (default: the policy's
    confirmation time, MAILER_PENDING_TTL days), with the personal details of their
    request, and the person too when nothing else of theirs remains.

    Safe to run at any time and repeatedly: each batch is one transaction that
    re-checks the age and status, and each purge writes one ledger event that
    holds no personal data.
    """
    ttl = ttl if ttl is not None else service.policy.confirm_ttl
    now = service.clock.now()
    cutoff = now - ttl
    if dry_run:
        with service.sessions() as session:
            count = session.scalar(
                select(func.count()).select_from(Subscription).where(_stale(cutoff))
            )
        return PurgeResult(cutoff, int(count or 0), 0, dry_run=True)
    subscriptions = subscribers = 0
    while True:
        with service.sessions.begin() as session:
            ledger.lock_ledger(session)
            stale = session.scalars(
                select(Subscription)
                .where(_stale(cutoff))
                .order_by(Subscription.id)
                .limit(batch)
                .options(selectinload(Subscription.subscriber), selectinload(Subscription.list))
            ).all()
            if not stale:
                break
            for subscription in stale:
                subscribers += _purge(session, subscription, now, ttl)
                subscriptions += 1
    return PurgeResult(cutoff, subscriptions, subscribers)


def _purge(session: Session, subscription: Subscription, now: datetime, ttl: timedelta) -> int:
    subscriber = subscription.subscriber
    ref, slug = subscriber.ref, subscription.list.slug
    ledger.append(
        session,
        ledger.Entry(
            kind=EventKind.PURGED,
            list_slug=slug,
            subject_ref=ref,
            method="retention",
            source="purge",
            occurred_at=now,
            text_version=subscription.consent_text.version,
            text_sha256=subscription.consent_text.sha256,
            data={"pending_since": ledger.iso(subscription.requested_at), "ttl_days": ttl.days},
        ),
    )
    episode = select(ConsentEvent.id).where(
        ConsentEvent.subject_ref == ref,
        ConsentEvent.list_slug == slug,
        ConsentEvent.occurred_at >= subscription.requested_at,
    )
    session.execute(delete(EventDetail).where(EventDetail.event_id.in_(episode)))
    session.execute(delete(Subscription).where(Subscription.id == subscription.id))
    session.expunge(subscription)
    others = session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.subscriber_id == subscriber.id)
    )
    if others:
        return 0
    session.execute(delete(EventDetail).where(EventDetail.subject_ref == ref))
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber.id))
    session.expunge(subscriber)
    return 1
