"""The profile part of the preferences page: the questions of the reader's lists, their answers,
and saving them (at once: the page is opened from the reader's own mail)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import EventKind, MailingList, Status, Subscriber, Subscription
from consent.preferences import subject_of
from consent.workflow import ConsentService, Evidence
from mailer.audience import profiles, topics
from mailer.audience.profiles import Answers
from mailer.clusters.countries import country_name


@dataclass(frozen=True)
class TopicChoice:
    slug: str
    label: str
    about: str
    chosen: bool


@dataclass(frozen=True)
class ListTopics:
    slug: str
    name: str
    topics: tuple[TopicChoice, ...]


@dataclass(frozen=True)
class ProfileForm:
    organisation: str | None  # None: no list of theirs asks it
    country: str | None
    country_name: str
    lists: tuple[ListTopics, ...]

    @property
    def any(self) -> bool:
        return self.organisation is not None or self.country is not None or bool(self.lists)


def _lists(session: Session, subscriber_id: int) -> list[MailingList]:
    return list(
        session.scalars(
            select(MailingList)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(
                Subscription.subscriber_id == subscriber_id,
                Subscription.status.in_([Status.ACTIVE.value, Status.PENDING.value]),
            )
            .order_by(MailingList.name)
        )
    )


def form(consent: ConsentService, token: str) -> ProfileForm:
    ref = subject_of(consent, token)
    with consent.sessions() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.ref == ref))
        if subscriber is None:
            return ProfileForm(None, None, "", ())
        shown = profiles.view(session, subscriber.id)
        asks_org = asks_country = False
        chosen_lists = []
        for mailing_list in _lists(session, subscriber.id):
            asked = topics.questions(session, mailing_list.id)
            asks_org, asks_country = asks_org or asked.organisation, asks_country or asked.country
            if asked.topics:
                mine = set(shown.topics.get(mailing_list.slug, ()))
                chosen_lists.append(
                    ListTopics(
                        mailing_list.slug,
                        mailing_list.name,
                        tuple(
                            TopicChoice(s, label, about, s in mine)
                            for s, label, about in asked.topics
                        ),  # fmt: skip
                    )
                )
        return ProfileForm(
            shown.organisation if asks_org else None,
            (shown.country or "") if asks_country else None,
            country_name(shown.country) if shown.country else "",
            tuple(chosen_lists),
        )


def save(
    consent: ConsentService,
    token: str,
    organisation: str | None,
    country: str | None,
    chosen: Mapping[str, Sequence[str]],
    evidence: Evidence,
) -> None:
    """Apply what the page sent: organisation, country, and the topics of each list shown."""
    ref = subject_of(consent, token)
    now = consent.clock.now()
    with consent.sessions.begin() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.ref == ref))
        if subscriber is None:
            return
        changed: list[str] = []
        for mailing_list in _lists(session, subscriber.id):
            asked = topics.questions(session, mailing_list.id)
            answers = profiles.check(
                session,
                mailing_list.id,
                asked,
                organisation,
                country,
                list(chosen.get(mailing_list.slug, ())) if asked.topics else None,
            )
            if answers != Answers():
                profiles.apply(session, now, subscriber.id, mailing_list.id, answers)
                changed.append(mailing_list.slug)
        if changed:  # which lists' answers changed, never the answers (they stay out of it)
            consent.record_about(
                session,
                subscriber,
                EventKind.RECTIFIED,
                evidence,
                {"field": "profile", "lists": changed},
            )
