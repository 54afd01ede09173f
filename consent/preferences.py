"""Preferences and operator views: what a subscriber sees and changes, and who is on a list.

A preferences link is in every newsletter and welcome mail, which people forward
and archive, so it opens only what a reader of the mail may do (lists, name,
leaving) and stops working `Policy.preferences_ttl` after it was issued. Every
token carries its issue time, so links mailed before the limit existed expire
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from consent import tokens
from consent.addresses import clean_name
from consent.lists import ListView, get_list, list_view
from consent.models import EventKind, MailingList, Status, Subscriber, Subscription
from consent.workflow import Announcement, ConsentService, Evidence, Unsubscribed


@dataclass(frozen=True)
class ListChoice:
    list: ListView
    status: str | None  # the person's subscription to it, if any


@dataclass(frozen=True)
class Preferences:
    subject_ref: str
    email: str
    name: str
    choices: tuple[ListChoice, ...]


@dataclass(frozen=True)
class SubscriberRow:
    email: str
    name: str
    list: str
    status: str
    requested_at: datetime
    confirmed_at: datetime | None


def _view(session: Session, subscriber: Subscriber) -> Preferences:
    by_list = {s.list_id: s for s in subscriber.subscriptions}
    choices = []
    for mailing_list in session.scalars(
        select(MailingList).options(selectinload(MailingList.texts)).order_by(MailingList.name)
    ):
        sub = by_list.get(mailing_list.id)
        choices.append(ListChoice(list_view(mailing_list), sub.status.value if sub else None))
    return Preferences(
        subject_ref=subscriber.ref,
        email=subscriber.email,
        name=subscriber.name,
        choices=tuple(choices),
    )


class PreferencesExpired(tokens.TokenExpired):
    """A genuine preferences link, older than the policy allows."""


def subject_of(service: ConsentService, token: str) -> str:
    """The subject a preferences link was made for, if it is still young enough."""
    try:
        claims = service.tokens.read(
            tokens.PREFERENCES, token, max_age=service.policy.preferences_ttl
        )
    except tokens.TokenExpired as exc:
        days = service.policy.preferences_ttl.days
        raise PreferencesExpired(f"this preferences link is more than {days} days old") from exc
    return claims.subject


def _subscriber(service: ConsentService, session: Session, token: str) -> Subscriber:
    subscriber = service.by_ref(session, subject_of(service, token))
    if subscriber is None:
        raise tokens.TokenExpired("this link is no longer valid")
    return subscriber


def show(service: ConsentService, token: str) -> Preferences:
    with service.sessions.begin() as session:
        return _view(session, _subscriber(service, session, token))


def update(
    service: ConsentService, token: str, wanted: set[str], name: str | None, evidence: Evidence
) -> tuple[Preferences, tuple[Announcement, ...]]:
    """Leave the lists not in `wanted`, ask to join the new ones (double opt-in)."""
    display = clean_name(name) if name is not None else None
    announcements: list[Announcement] = []
    with service.sessions.begin() as session:
        subscriber = _subscriber(service, session, token)
        for slug in wanted:
            get_list(session, slug)  # unknown lists are an input error
        if display is not None and display != subscriber.name:
            subscriber.name = display
            service.record_about(
                session, subscriber, EventKind.RECTIFIED, evidence, {"field": "name"}
            )
        for subscription in subscriber.subscriptions:
            slug = subscription.list.slug
            if subscription.status in (Status.ACTIVE, Status.PENDING) and slug not in wanted:
                service.move(session, "withdraw", subscription, evidence)
                subscription.ended_at = service.clock.now()
                announcements.append(Unsubscribed(subscriber.ref, slug))
        current = {
            s.list.slug
            for s in subscriber.subscriptions
            if s.status in (Status.ACTIVE, Status.PENDING)
        }
        joins = sorted(wanted - current)
        email, display_name = subscriber.email, subscriber.name
    for slug in joins:
        announcements.extend(service.request(slug, email, display_name, evidence))
    with service.sessions.begin() as session:
        return _view(session, _subscriber(service, session, token)), tuple(announcements)


def subscribers(
    service: ConsentService,
    list_slug: str,
    status: Status | None = None,
    limit: int | None = None,
) -> list[SubscriberRow]:
    """Who is on a list, in which state (the subscription's: suppression moves it too)."""
    with service.sessions() as session:
        mailing_list = get_list(session, list_slug)
        query = (
            select(Subscriber.email, Subscriber.name, Subscription)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .where(Subscription.list_id == mailing_list.id)
            .order_by(Subscriber.email)
        )
        if status is not None:
            query = query.where(Subscription.status == status)
        if limit is not None:
            query = query.limit(limit)
        return [
            SubscriberRow(
                email=email,
                name=name,
                list=mailing_list.slug,
                status=Status(sub.status).value,
                requested_at=sub.requested_at,
                confirmed_at=sub.confirmed_at,
            )
            for email, name, sub in session.execute(query)
        ]
