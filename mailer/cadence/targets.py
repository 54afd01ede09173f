"""A schedule that targets a segment: every issue it drafts goes to that segment only."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent.models import Base
from mailer.audience.models import Segment


class ScheduleSegment(Base):
    """RESTRICT: a segment cannot be removed while a schedule sends to it."""

    __tablename__ = "schedule_segments"

    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), index=True
    )


def segment_of(session: Session, schedule_id: int) -> str | None:
    row = session.get(ScheduleSegment, schedule_id)
    if row is None:
        return None
    return session.get_one(Segment, row.segment_id).name
