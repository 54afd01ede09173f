"""Readers' profiles: answers checked, held until a request is confirmed, then applied.

Answers from a form or an import are personal data: they live here, beside the
subscriber, never in the hash-chained ledger (the request's evidence records only
which questions were asked). A request's answers wait in `pending_answers` until
its confirmation, since anyone can type an address into a form; the preferences
page, opened from the reader's own mail, changes them at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput, clean_text, normalise_address
from consent.models import MailingList, Subscriber, Subscription
from mailer.audience.models import PendingAnswers, Profile, ProfileTopic, Topic
from mailer.audience.topics import Questions, topics_of
from mailer.clusters.catalogue import name_key, resolve
from mailer.clusters.countries import country_code, country_name
from mailer.clusters.models import Cluster


@dataclass(frozen=True)
class Answers:
    """Checked answers; None for a question not asked (or left as it is)."""

    organisation: str | None = None
    country: str | None = None  # ISO alpha-2, or "" for none
    topics: tuple[str, ...] | None = None  # topic slugs of the list

    @property
    def empty(self) -> bool:
        return self.organisation is None and self.country is None and self.topics is None

    def record(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Answers:
        topics = record.get("topics")
        return cls(
            record.get("organisation"),
            record.get("country"),
            tuple(topics) if topics is not None else None,
        )


def check(
    session: Session,
    list_id: int,
    asked: Questions,
    organisation: str | None,
    country: str | None,
    topics: Sequence[str] | None,
) -> Answers:
    """Answers to the questions `asked`; an answer to a question not asked is ignored."""
    org = None
    if asked.organisation and organisation is not None:
        org = clean_text(organisation, "the organisation", 200, required=False)
    code = None
    if asked.country and country is not None:
        code = country_code(country) if country.strip() else ""
    chosen = None
    if asked.topics and topics is not None:
        known = {t.slug for t in topics_of(session, list_id)}
        unknown = [t for t in topics if t not in known]
        if unknown:
            raise InvalidInput(f"unknown topic {unknown[0][:64]!r}")
        chosen = tuple(dict.fromkeys(topics))
    return Answers(org, code, chosen)


def apply(
    session: Session, now: datetime, subscriber_id: int, list_id: int, answers: Answers
) -> None:
    """Store the answers on the reader's profile (topics: on this list only)."""
    if answers.organisation is not None or answers.country is not None:
        profile = session.get(Profile, subscriber_id)
        if profile is None:
            profile = Profile(
                subscriber_id=subscriber_id, organisation="", organisation_key="", updated_at=now
            )
            session.add(profile)
        if answers.organisation is not None:
            cluster = resolve(session, answers.organisation) if answers.organisation else None
            profile.organisation = cluster.name if cluster else answers.organisation
            profile.organisation_key = name_key(profile.organisation)
            profile.cluster_id = cluster.id if cluster else None
        if answers.country is not None:
            profile.country = answers.country or None
        profile.updated_at = now
    if answers.topics is not None:
        ids = {t.slug: t.id for t in topics_of(session, list_id)}
        session.execute(
            delete(ProfileTopic).where(
                ProfileTopic.subscriber_id == subscriber_id,
                ProfileTopic.topic_id.in_(list(ids.values())),
            )
        )
        for slug in answers.topics:
            session.add(ProfileTopic(subscriber_id=subscriber_id, topic_id=ids[slug]))
    session.flush()


def _subscription(session: Session, subject_ref: str, list_slug: str) -> Subscription | None:
    return session.scalar(
        select(Subscription)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscriber.ref == subject_ref, MailingList.slug == list_slug)
    )


def hold(
    session: Session, now: datetime, subject_ref: str, list_slug: str, answers: Answers
) -> None:
    """Keep a request's answers until it is confirmed (a newer request replaces them)."""
    subscription = _subscription(session, subject_ref, list_slug)
    if subscription is None:
        return
    row = session.get(PendingAnswers, subscription.id)
    if answers.empty:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = PendingAnswers(subscription_id=subscription.id)
        session.add(row)
    row.answers, row.requested_at = answers.record(), now
    session.flush()


def hold_rows(
    session: Session, now: datetime, list_id: int, rows: Sequence[tuple[int, Answers]]
) -> None:
    """hold() for imported pending rows, by subscriber id."""
    for subscriber_id, answers in rows:
        subscription_id = session.scalar(
            select(Subscription.id).where(
                Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id
            )
        )
        if subscription_id is None or answers.empty:
            continue
        row = session.get(PendingAnswers, subscription_id) or PendingAnswers(
            subscription_id=subscription_id
        )
        row.answers, row.requested_at = answers.record(), now
        session.add(row)
    session.flush()


def release(session: Session, now: datetime, subject_ref: str, list_slug: str) -> bool:
    """Apply the confirmed request's answers; False when there were none."""
    subscription = _subscription(session, subject_ref, list_slug)
    if subscription is None:
        return False
    row = session.get(PendingAnswers, subscription.id)
    if row is None:
        return False
    apply(
        session,
        now,
        subscription.subscriber_id,
        subscription.list_id,
        Answers.from_record(row.answers),
    )
    session.delete(row)
    return True


@dataclass(frozen=True)
class ProfileView:
    organisation: str
    cluster: str | None
    country: str | None
    topics: dict[str, list[str]]  # list slug -> topic slugs


def view(session: Session, subscriber_id: int) -> ProfileView:
    profile = session.get(Profile, subscriber_id)
    cluster = session.get(Cluster, profile.cluster_id) if profile and profile.cluster_id else None
    chosen: dict[str, list[str]] = {}
    for list_slug, slug in session.execute(
        select(MailingList.slug, Topic.slug)
        .join(Topic, Topic.list_id == MailingList.id)
        .join(ProfileTopic, ProfileTopic.topic_id == Topic.id)
        .where(ProfileTopic.subscriber_id == subscriber_id)
        .order_by(MailingList.slug, Topic.position)
    ):
        chosen.setdefault(list_slug, []).append(slug)
    return ProfileView(
        organisation=profile.organisation if profile else "",
        cluster=cluster.name if cluster else None,
        country=profile.country if profile else None,
        topics=chosen,
    )


def export_record(session: Session, subscriber_id: int) -> dict[str, Any]:
    shown = view(session, subscriber_id)
    waiting = [
        {"list": slug, "answers": answers, "given_at": at.isoformat()}
        for slug, answers, at in session.execute(
            select(MailingList.slug, PendingAnswers.answers, PendingAnswers.requested_at)
            .join(Subscription, Subscription.id == PendingAnswers.subscription_id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id == subscriber_id)
        )
    ]
    return {
        "organisation": shown.organisation,
        "catalogue_cluster": shown.cluster,
        "country": shown.country,
        "country_name": country_name(shown.country) if shown.country else None,
        "topics": shown.topics,
        "answers_awaiting_confirmation": waiting,
    }


def record_of(session: Session, email: str) -> dict[str, Any] | None:
    """What the reader with this address told us (as `export_record`), or None if unknown."""
    subscriber_id = session.scalar(
        select(Subscriber.id).where(Subscriber.email == normalise_address(email))
    )
    return None if subscriber_id is None else export_record(session, subscriber_id)


def erase(session: Session, subscriber_id: int) -> None:
    session.execute(delete(ProfileTopic).where(ProfileTopic.subscriber_id == subscriber_id))
    session.execute(delete(Profile).where(Profile.subscriber_id == subscriber_id))
    session.execute(
        delete(PendingAnswers).where(
            PendingAnswers.subscription_id.in_(
                select(Subscription.id).where(Subscription.subscriber_id == subscriber_id)
            )
        )
    )


def reader_topics(
    session: Session, list_id: int, subscriber_ids: Sequence[int]
) -> dict[int, frozenset[str]]:
    """The topics each of `subscriber_ids` chose on the list (absent: none chosen)."""
    found: dict[int, set[str]] = {}
    if not subscriber_ids:
        return {}
    for sid, slug in session.execute(
        select(ProfileTopic.subscriber_id, Topic.slug)
        .join(Topic, Topic.id == ProfileTopic.topic_id)
        .where(Topic.list_id == list_id, ProfileTopic.subscriber_id.in_(list(subscriber_ids)))
    ):
        found.setdefault(sid, set()).add(slug)
    return {sid: frozenset(slugs) for sid, slugs in found.items()}
