"""Tables of the audience: topics per list, what each list's form asks, readers' profiles
and topics, answers waiting for a confirmation, and saved segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consent.models import Base, UTCDateTime


class Topic(Base):
    """A per-list interest group ("Policy and funding") a reader may choose."""

    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("list_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    about: Mapped[str] = mapped_column(Text, default="")  # what choosing it means, on the form
    position: Mapped[int] = mapped_column(Integer, default=0)


class TopicSection(Base):
    """An issue section tied to a topic: readers who chose topics see it only if they chose it."""

    __tablename__ = "topic_sections"
    __table_args__ = (UniqueConstraint("list_id", "section"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    section: Mapped[str] = mapped_column(String(100))


class ProfileQuestions(Base):
    """Which optional questions a list's subscribe form and preferences page ask."""

    __tablename__ = "profile_questions"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    organisation: Mapped[bool] = mapped_column(Boolean, default=False)
    country: Mapped[bool] = mapped_column(Boolean, default=False)
    topics: Mapped[bool] = mapped_column(Boolean, default=False)


class Profile(Base):
    """What a reader said of themselves: organisation (a cluster or free text), country."""

    __tablename__ = "profiles"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    organisation: Mapped[str] = mapped_column(String(200), default="")
    organisation_key: Mapped[str] = mapped_column(String(200), default="", index=True)
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), nullable=True, index=True
    )
    country: Mapped[str | None] = mapped_column(String(2), nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProfileTopic(Base):
    """A topic a reader chose (on the topic's list)."""

    __tablename__ = "profile_topics"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class PendingAnswers(Base):
    """Answers given with a subscription request, applied only when it is confirmed: until
    then anyone could have typed the address. Gone with the request (purge, erasure)."""

    __tablename__ = "pending_answers"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Segment(Base):
    """A saved filter over a list's readers (mailer.audience.filters), by name."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    filter: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
