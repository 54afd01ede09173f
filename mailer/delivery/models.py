"""Tables of delivery: the ledger of one row per (issue, subscriber), and campaigns."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consent.models import Base, UTCDateTime


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # owed a copy
    SENDING = "sending"  # SMTP transaction under way (recorded before it starts)
    SENT = "sent"  # the relay answered 250
    DEFERRED = "deferred"  # 4xx or no connection: retried at next_attempt_at
    FAILED = "failed"  # 5xx, or deferred past the maximum age
    BOUNCED = "bounced"  # 5.1.x at SMTP time, or a DSN later: the address is suppressed
    UNCERTAIN = "uncertain"  # found in `sending` after a crash, or the link broke in DATA
    CANCELLED = "cancelled"  # consent ended after the batch was taken: never sent


OWED = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


class Delivery(Base):
    """One copy of one issue for one subscriber; erasing the subscriber removes it."""

    __tablename__ = "deliveries"
    # The unique index serves every per-issue query; no index on status, which changes
    # twice per copy (an index there would double the writes of the hot path).
    __table_args__ = (UniqueConstraint("issue_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    smtp_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    smtp_reply: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CampaignState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # stopped itself (error threshold) or was stopped; resume by sending again
    WAITING = "waiting"  # every copy tried; deferred ones wait for their next attempt
    FINISHED = "finished"  # nothing owed any more: the issue is marked sent


class Campaign(Base):
    """The sending of one issue: who runs it, and where it stands."""

    __tablename__ = "campaigns"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(12))
    runner: Mapped[str] = mapped_column(String(200), default="")  # host:pid of the live run
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
