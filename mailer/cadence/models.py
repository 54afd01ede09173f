"""Tables of cadence: a list's recurring schedules and the outcome of each of their slots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consent.models import Base, MailingList, UTCDateTime


class Schedule(Base):
    """A list's cadence: a cron in a time zone, a lead time for drafting, an approval gate."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    lead_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_items: Mapped[int] = mapped_column(Integer, default=0)
    approval: Mapped[str] = mapped_column(String(10), default="required")  # or "auto"
    grace_minutes: Mapped[int] = mapped_column(Integer, default=360)
    editors: Mapped[str] = mapped_column(Text, default="")  # comma-separated addresses
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    list: Mapped[MailingList] = relationship()


class ScheduleSlot(Base):
    """What happened at one slot of a schedule; unique per (schedule, local slot time)."""

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("schedule_id", "slot_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    slot_key: Mapped[str] = mapped_column(String(16))  # local wall-clock "YYYY-MM-DDTHH:MM"
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # drafted, skipped, held, sending, sent, missed, failed
    status: Mapped[str] = mapped_column(String(10))
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
