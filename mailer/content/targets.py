"""An issue that targets a segment: who it goes to is decided by the filter at send time.

The target keeps the segment's name and a copy of its filter, refreshed from the
segment whenever it is read while the segment exists: an issue whose segment was
removed still goes to that segment, never to the whole list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent.addresses import InvalidInput
from consent.models import Base
from mailer.audience.models import Segment
from mailer.audience.segments import get_segment
from mailer.content.models import Issue


class IssueSegment(Base):
    __tablename__ = "issue_segments"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL"), nullable=True, index=True
    )
    segment_name: Mapped[str] = mapped_column(String(64))
    filter: Mapped[dict[str, Any]] = mapped_column(JSON)


def target(session: Session, issue: Issue, segment_name: str) -> IssueSegment:
    """Send `issue` only to the segment (of the issue's list)."""
    segment = get_segment(session, segment_name)
    if segment.list_id != issue.list_id:
        raise InvalidInput(f"the segment {segment.name!r} is of another list")
    row = session.get(IssueSegment, issue.id) or IssueSegment(issue_id=issue.id)
    row.segment_id, row.segment_name, row.filter = segment.id, segment.name, segment.filter
    session.add(row)
    session.flush()
    return row


def target_of(session: Session, issue_id: int) -> IssueSegment | None:
    """The issue's target with its filter as the segment now reads, or None (the whole list)."""
    row = session.get(IssueSegment, issue_id)
    if row is not None and row.segment_id is not None:
        segment = session.get(Segment, row.segment_id)
        if segment is not None and segment.filter != row.filter:
            row.filter = segment.filter
    return row
