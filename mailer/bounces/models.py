"""Tables of bounces: soft-bounce counts, and returned mail tied to no copy we sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from consent.models import Base, UTCDateTime


class UnmatchedReport(Base):
    """A bounce or complaint that suppressed nobody: nothing in it matched a copy we sent.

    The addresses it named are kept only as keyed hashes (the suppression HMAC), so
    an operator can ask whether a given address was named without the table
    holding any address; rows are deleted after `bounces.UNMATCHED_KEPT`.
    """

    __tablename__ = "unmatched_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # hard | soft | complaint
    status: Mapped[str] = mapped_column(String(16), default="")
    format: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(String(20))  # see bounce_ties.Unmatched
    named: Mapped[str] = mapped_column(Text, default="")  # comma-separated address HMACs


class SoftBounce(Base):
    """One temporary failure reported for an address, known only by its keyed hash."""

    __tablename__ = "soft_bounces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hmac: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="")
