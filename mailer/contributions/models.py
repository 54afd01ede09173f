"""Tables of contributions: what a cluster sent in, its contact (for a while), its fate."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consent.models import Base, MailingList, UTCDateTime


class ContributionStatus(enum.StrEnum):
    UNCONFIRMED = "unconfirmed"  # waiting for its contact to confirm by the mailed link
    PENDING = "pending"  # confirmed: in the editors' queue
    ACCEPTED = "accepted"  # entered the list's next draft
    REJECTED = "rejected"


class Contribution(Base):
    """A news item or an event sent in through /contribute/{list}.

    The contact address is kept only to confirm the submission and to tell the
    decision: it is emptied `MAILER_CONTRIBUTION_RETENTION` days after the decision
    (an unconfirmed contribution is deleted whole after `MAILER_PENDING_TTL` days).
    It never becomes a subscriber.
    """

    __tablename__ = "contributions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "news" or "event"
    title: Mapped[str] = mapped_column(String(300))
    link: Mapped[str] = mapped_column(String(2000), default="")
    summary_html: Mapped[str] = mapped_column(Text, default="")
    summary_text: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="")
    place: Mapped[str] = mapped_column(String(500), default="")  # a place, or "Online"
    organisation: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was rejected
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("feed_items.id", ondelete="SET NULL"), nullable=True
    )
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("project_events.id", ondelete="SET NULL"), nullable=True
    )

    mailing_list: Mapped[MailingList] = relationship()
