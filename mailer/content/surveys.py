"""Surveys linked to events: shown once, in the first issue approved after the event ends.

The issue that shows a survey claims it at approval (`shown_issue_id`); reopening
that issue gives the claim back, so it is shown once and never again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent.addresses import InvalidInput, clean_text
from consent.models import Base, UTCDateTime
from mailer.clusters.catalogue import clean_website
from mailer.content.models import Issue, ProjectEvent

DEFAULT_QUESTION = "How was {title}? Tell us in two minutes."


class EventSurvey(Base):
    __tablename__ = "event_surveys"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("project_events.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    question: Mapped[str] = mapped_column(String(300))
    shown_issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class SurveyBlock:
    question: str
    url: str
    event: str


def attach(
    session: Session, now: datetime, event_id: int, url: str, question: str = ""
) -> EventSurvey:
    """Give an event a survey link (or change it, while it has not been shown)."""
    event = session.get(ProjectEvent, event_id)
    if event is None:
        raise InvalidInput(f"no event {event_id} (see `mailer events list`)")
    link = clean_website(url)
    if not link:
        raise InvalidInput("the survey needs a link")
    text = clean_text(question, "the question", 300, required=False) or DEFAULT_QUESTION.format(
        title=f"“{event.title}”"
    )
    row = session.get(EventSurvey, event_id)
    if row is not None and row.shown_issue_id is not None:
        raise InvalidInput(f"the survey of event {event_id} was shown already")
    row = row or EventSurvey(event_id=event_id, created_at=now)
    row.url, row.question = link, text
    session.add(row)
    session.flush()
    return row


def _ended(now: datetime) -> Any:
    return func.coalesce(ProjectEvent.ends_at, ProjectEvent.starts_at) <= now


def due(session: Session, issue: Issue, now: datetime) -> list[SurveyBlock]:
    """The surveys the issue shows: its list's events that ended by `now`, not shown elsewhere."""
    rows = session.execute(
        select(EventSurvey, ProjectEvent.title)
        .join(ProjectEvent, ProjectEvent.id == EventSurvey.event_id)
        .where(
            ProjectEvent.list_id == issue.list_id,
            _ended(now),
            or_(EventSurvey.shown_issue_id.is_(None), EventSurvey.shown_issue_id == issue.id),
        )
        .order_by(ProjectEvent.starts_at)
    )
    return [SurveyBlock(s.question, s.url, title) for s, title in rows]


def claim(session: Session, issue: Issue, now: datetime) -> None:
    """Mark the surveys `due` as shown by this issue (at its approval)."""
    ids = select(ProjectEvent.id).where(ProjectEvent.list_id == issue.list_id, _ended(now))
    session.execute(
        update(EventSurvey)
        .where(EventSurvey.event_id.in_(ids), EventSurvey.shown_issue_id.is_(None))
        .values(shown_issue_id=issue.id)
    )


def release(session: Session, issue: Issue) -> None:
    """The issue was reopened: its surveys may be shown by the next approval."""
    session.execute(
        update(EventSurvey)
        .where(EventSurvey.shown_issue_id == issue.id)
        .values(shown_issue_id=None)
    )
