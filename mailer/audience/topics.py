"""Topics per list, the issue sections tied to them, and what each list's form asks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput, clean_text
from consent.lists import get_list
from mailer.audience.models import ProfileQuestions, ProfileTopic, Topic, TopicSection

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_TOPICS = 20
EVENTS_SECTION = "Upcoming events"  # the events block, tied like any section


class UnknownTopic(InvalidInput, LookupError):
    def __init__(self, slug: str, list_slug: str) -> None:
        super().__init__(f"no topic {slug[:64]!r} on {list_slug} (see `mailer topics list`)")


@dataclass(frozen=True)
class Questions:
    """The optional questions a list asks, and its topics (slug, label, about) in order."""

    organisation: bool
    country: bool
    topics: tuple[tuple[str, str, str], ...]

    @property
    def any(self) -> bool:
        return self.organisation or self.country or bool(self.topics)

    def asked(self) -> dict[str, Any]:
        """What the form showed, for the consent record (questions and labels, no answers)."""
        return {
            "organisation": self.organisation,
            "country": self.country,
            "topics": [label for _slug, label, _about in self.topics],
        }


def topics_of(session: Session, list_id: int) -> list[Topic]:
    return list(
        session.scalars(
            select(Topic).where(Topic.list_id == list_id).order_by(Topic.position, Topic.slug)
        )
    )


def sections_of(session: Session, topic: Topic) -> list[str]:
    return list(
        session.scalars(
            select(TopicSection.section)
            .where(TopicSection.topic_id == topic.id)
            .order_by(TopicSection.section)
        )
    )


def add_topic(
    session: Session,
    list_slug: str,
    slug: str,
    label: str,
    about: str = "",
    sections: Sequence[str] = (),
) -> Topic:
    """A new topic of the list, tied to `sections` (an issue section by its name)."""
    mailing_list = get_list(session, list_slug)
    if not SLUG.match(slug):
        raise InvalidInput("a topic's slug is 1-63 lower-case letters, digits or hyphens")
    existing = topics_of(session, mailing_list.id)
    if any(t.slug == slug for t in existing):
        raise InvalidInput(f"{list_slug} has a topic {slug!r} already")
    if len(existing) >= MAX_TOPICS:
        raise InvalidInput(f"a list has at most {MAX_TOPICS} topics")
    topic = Topic(
        list_id=mailing_list.id,
        slug=slug,
        label=clean_text(label, "the label", 100),
        about=clean_text(about, "what the topic is for", 500, required=False),
        position=len(existing),
    )
    session.add(topic)
    session.flush()
    tie(session, list_slug, slug, sections)
    return topic


def get_topic(session: Session, list_slug: str, slug: str) -> Topic:
    mailing_list = get_list(session, list_slug)
    found = session.scalar(
        select(Topic).where(Topic.list_id == mailing_list.id, Topic.slug == slug)
    )
    if found is None:
        raise UnknownTopic(slug, list_slug)
    return found


def tie(session: Session, list_slug: str, slug: str, sections: Iterable[str]) -> None:
    """Tie issue sections to the topic (a section belongs to one topic at most)."""
    topic = get_topic(session, list_slug, slug)
    for raw in sections:
        name = clean_text(raw, "a section", 100)
        owner = session.scalar(
            select(TopicSection).where(
                TopicSection.list_id == topic.list_id, TopicSection.section == name
            )
        )
        if owner is None:
            session.add(TopicSection(list_id=topic.list_id, topic_id=topic.id, section=name))
        else:
            owner.topic_id = topic.id
    session.flush()


def remove_topic(session: Session, list_slug: str, slug: str) -> None:
    """The topic goes, with its section ties and every reader's choice of it."""
    topic = get_topic(session, list_slug, slug)
    session.execute(delete(ProfileTopic).where(ProfileTopic.topic_id == topic.id))
    session.execute(delete(TopicSection).where(TopicSection.topic_id == topic.id))
    session.delete(topic)


def section_topics(session: Session, list_id: int) -> dict[str, str]:
    """Section name -> the slug of the topic it is tied to, for one list."""
    return {
        section: slug
        for section, slug in session.execute(
            select(TopicSection.section, Topic.slug)
            .join(Topic, Topic.id == TopicSection.topic_id)
            .where(TopicSection.list_id == list_id)
        )
    }


def set_questions(
    session: Session, list_slug: str, organisation: bool, country: bool, topics: bool
) -> ProfileQuestions:
    mailing_list = get_list(session, list_slug)
    row = session.get(ProfileQuestions, mailing_list.id)
    if row is None:
        row = ProfileQuestions(list_id=mailing_list.id)
        session.add(row)
    row.organisation, row.country, row.topics = organisation, country, topics
    session.flush()
    return row


def questions(session: Session, list_id: int) -> Questions:
    row = session.get(ProfileQuestions, list_id)
    if row is None:
        return Questions(False, False, ())
    chosen = (
        tuple((t.slug, t.label, t.about) for t in topics_of(session, list_id)) if row.topics else ()
    )
    return Questions(row.organisation, row.country, chosen)
