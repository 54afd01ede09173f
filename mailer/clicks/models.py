"""Tables of click counting: one counter per link, per issue, per day; nothing about anyone."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consent.models import Base


class ClickCount(Base):
    """How often one link of one issue was followed on one day (UTC), by all readers together.

    No subscriber, no address, no IP, no cookie, no time finer than the day: a row
    cannot be tied to a person, which is why counting needs no one's consent.
    """

    __tablename__ = "click_counts"
    __table_args__ = (UniqueConstraint("issue_id", "link_key", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    link_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the link
    url: Mapped[str] = mapped_column(Text)
    day: Mapped[date] = mapped_column(Date)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
