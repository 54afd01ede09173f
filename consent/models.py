"""Tables of the consent domain: lists (purposes), consent texts, subscribers,
subscriptions, the consent ledger and suppressions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from consent.clock import utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC on every backend and hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return utc(value)


class Status(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"


class EventKind(enum.StrEnum):
    """What a consent event records: every writer and reader of the ledger names it so.

    Which kinds grant or end consent is decided once, by `consent.replay`.
    """

    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    SUPPRESSED = "suppressed"
    IMPORTED = "imported"
    REPERMISSION_REQUESTED = "repermission-requested"
    RECTIFIED = "rectified"  # about the person (list "*"): name or address corrected
    ERASED = "erased"  # about the person (list "*"): everything personal removed
    PURGED = "purged"  # a pending request nobody confirmed, removed by retention


class MailingList(Base):
    """A list is one purpose of processing: one consent per list, never bundled."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    cadence: Mapped[str] = mapped_column(String(200))
    controller_name: Mapped[str] = mapped_column(String(200))
    controller_contact: Mapped[str] = mapped_column(String(320))
    controller_address: Mapped[str] = mapped_column(String(500), default="")
    controller_phone: Mapped[str] = mapped_column(String(40), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    texts: Mapped[list[ConsentText]] = relationship(
        back_populates="list", order_by="ConsentText.version"
    )

    @property
    def current_text(self) -> ConsentText:
        return self.texts[-1]


class ConsentText(Base):
    """One version of the exact text shown beside the consent box."""

    __tablename__ = "consent_texts"
    __table_args__ = (UniqueConstraint("list_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    list: Mapped[MailingList] = relationship(back_populates="texts")


class Subscriber(Base):
    """A person, known by a normalised address; `ref` names them in the ledger."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(36), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Key of this person's commitments in the ledger; erasure destroys it.
    commitment_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )


class Subscription(Base):
    """The current state of one subscriber on one list; the ledger holds its history."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("subscriber_id", "list_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    consent_text_id: Mapped[int] = mapped_column(ForeignKey("consent_texts.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    list: Mapped[MailingList] = relationship()
    consent_text: Mapped[ConsentText] = relationship()


class ConsentEvent(Base):
    """One link of the append-only, hash-chained consent ledger.

    It holds no personal data: the person is named by `subject_ref`, and what
    would identify them (address, IP, user agent, evidence) lives in
    `EventDetail`, bound to this row by `commitment`, an HMAC under the
    subject's own key. Rows of this table are only ever inserted.
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # an EventKind; read back as stored
    list_slug: Mapped[str] = mapped_column(String(64), index=True)
    subject_ref: Mapped[str] = mapped_column(String(36), index=True)
    method: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200))
    text_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    commitment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class EventDetail(Base):
    """The personal side of a consent event; removed by erasure, never by anything else."""

    __tablename__ = "consent_event_details"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("consent_events.id", ondelete="CASCADE"), primary_key=True
    )
    subject_ref: Mapped[str] = mapped_column(String(36), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)


class Suppression(Base):
    """An address that must never be mailed (or re-imported) within a scope.

    Only a keyed hash of the normalised address is kept, with scope, reason and date.
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("address_hmac", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hmac: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(64))  # a list slug, or "*" for every list
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
