"""What issue 13 adds to an issue when it is built: the topics its sections are tied to,
the cluster of the month (first issue of a month), and the surveys due after events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailer.audience.topics import section_topics
from mailer.content import spotlight, surveys
from mailer.content.issue_content import ClusterBlock, Extras, SurveyEntry
from mailer.content.models import Issue


def gather(session: Session, issue: Issue, now: datetime, *, settle: bool) -> Extras:
    """The extras of `issue` built at `now`; `settle` (approval) records the month's choice."""
    cluster = spotlight.block(session, issue, now, settle)
    return Extras(
        section_topics=section_topics(session, issue.list_id),
        cluster=ClusterBlock(**cluster) if cluster else None,
        surveys=tuple(
            SurveyEntry(s.question, s.url, s.event) for s in surveys.due(session, issue, now)
        ),
    )
