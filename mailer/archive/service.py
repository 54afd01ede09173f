"""The public archive of a list: its sent issues, newest first, each as a web copy.

What is shown: issues that were sent (status sent), of a list whose archive is on,
that no editor withheld. Anything else is "not in the archive", whether it exists
or not. Each answer says when it last changed, for the edge's Last-Modified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ColumnElement

from consent.clock import Clock
from consent.lists import get_list
from consent.models import MailingList
from mailer.archive.models import WithheldIssue
from mailer.archive.webcopy import WebCopies
from mailer.content.curation import get_issue
from mailer.content.issue_content import IssueContent
from mailer.content.models import Issue, IssueStatus
from mailer.content.publication import publication_of
from mailer.content.sanitize import plain_text
from mailer.mail.render import Renderer

PAGE_SIZE = 20
FEED_SIZE = 20


class NotInArchive(LookupError):
    """No such list archive, or no such issue in it (never sent, withheld, archive off)."""


@dataclass(frozen=True)
class ArchivedIssue:
    number: int
    subject: str
    date_label: str
    sent_at: datetime
    summary: str  # the preheader, or the start of the introduction
    headlines: tuple[str, ...]


@dataclass(frozen=True)
class Listing:
    list_slug: str
    list_name: str
    purpose: str
    cadence: str
    controller_name: str
    issues: tuple[ArchivedIssue, ...]
    page: int
    pages: int
    total: int
    last_modified: datetime | None


@dataclass(frozen=True)
class IssuePage:
    list_slug: str
    number: int
    subject: str
    html: str
    last_modified: datetime


def _shown(list_id: int) -> list[ColumnElement[bool]]:
    withheld = exists().where(WithheldIssue.issue_id == Issue.id, WithheldIssue.withheld)
    return [
        Issue.list_id == list_id,
        Issue.status == IssueStatus.SENT,
        Issue.sent_at.is_not(None),
        ~withheld,
    ]


def _summary(content: IssueContent) -> tuple[str, tuple[str, ...]]:
    titles: list[str] = []
    if content.highlight is not None:
        shown = content.highlight.news or content.highlight.event
        if shown is not None:
            titles.append(shown.title)
    titles += [e.title for s in content.sections for e in s.entries]
    titles += [e.title for e in content.events]
    intro = plain_text(content.intro_html)
    summary = content.preheader or (intro[:297] + "…" if len(intro) > 300 else intro)
    return summary, tuple(titles)


def _archived(issue: Issue) -> ArchivedIssue:
    assert issue.sent_at is not None and issue.content is not None
    content = IssueContent.from_record(issue.content)
    summary, headlines = _summary(content)
    return ArchivedIssue(
        issue.number, content.subject, content.date_label, issue.sent_at, summary, headlines
    )


class Archive:
    """Reads of the public archive (blocking: database, and an MJML compile per new page)."""

    def __init__(self, sessions: sessionmaker[Session], renderer: Renderer) -> None:
        self.sessions = sessions
        self.copies = WebCopies(renderer)

    def _list(self, session: Session, slug: str) -> MailingList:
        mailing_list = get_list(session, slug)
        if not publication_of(session, mailing_list.id).archive:
            raise NotInArchive(f"{slug} has no public archive")
        return mailing_list

    def _last_modified(self, session: Session, mailing_list: MailingList) -> datetime | None:
        """The latest of: an issue sent, the archive switched, an issue withheld or shown."""
        moments = [
            session.scalar(select(func.max(Issue.sent_at)).where(*_shown(mailing_list.id))),
            publication_of(session, mailing_list.id).changed_at,
            session.scalar(
                select(func.max(WithheldIssue.changed_at))
                .join(Issue, Issue.id == WithheldIssue.issue_id)
                .where(Issue.list_id == mailing_list.id)
            ),
        ]
        found = [m for m in moments if m is not None]
        return max(found) if found else None

    def listing(self, slug: str, page: int = 1, size: int = PAGE_SIZE) -> Listing:
        """One page of the sent issues, newest first; a page past the last is not found."""
        with self.sessions() as session:
            mailing_list = self._list(session, slug)
            total = session.scalar(select(func.count()).where(*_shown(mailing_list.id))) or 0
            pages = max(1, math.ceil(total / size))
            if page < 1 or page > pages:
                raise NotInArchive(f"the archive of {slug} has {pages} page(s)")
            rows = session.scalars(
                select(Issue)
                .where(*_shown(mailing_list.id))
                .order_by(Issue.sent_at.desc(), Issue.number.desc())
                .offset((page - 1) * size)
                .limit(size)
            )
            return Listing(
                list_slug=mailing_list.slug,
                list_name=mailing_list.name,
                purpose=mailing_list.purpose,
                cadence=mailing_list.cadence,
                controller_name=mailing_list.controller_name,
                issues=tuple(_archived(issue) for issue in rows),
                page=page,
                pages=pages,
                total=total,
                last_modified=self._last_modified(session, mailing_list),
            )

    def feed(self, slug: str) -> Listing:
        """The newest issues, for the Atom feed."""
        return self.listing(slug, 1, FEED_SIZE)

    def issue(self, slug: str, number: int) -> IssuePage:
        """The web copy of issue `number` (the per-list number readers see)."""
        with self.sessions() as session:
            mailing_list = self._list(session, slug)
            issue = session.scalar(
                select(Issue).where(*_shown(mailing_list.id), Issue.number == number)
            )
            if issue is None or issue.content is None or issue.sent_at is None:
                raise NotInArchive(f"issue {number} of {slug} is not in the archive")
            content = IssueContent.from_record(issue.content)
            version = issue.approved_at.isoformat() if issue.approved_at else ""
            issue_id, sent_at = issue.id, issue.sent_at
        html = self.copies.get(issue_id, version, content)
        return IssuePage(slug, number, content.subject, html, sent_at)


def withhold(session: Session, clock: Clock, issue_id: int, withheld: bool = True) -> Issue:
    """Keep an issue out of the public archive (or show it again); any issue may be."""
    issue = get_issue(session, issue_id)
    row = session.get(WithheldIssue, issue.id)
    if row is None:
        row = WithheldIssue(issue_id=issue.id)
        session.add(row)
    row.withheld = withheld
    row.changed_at = clock.now()
    session.flush()
    return issue


def is_withheld(session: Session, issue_id: int) -> bool:
    row = session.get(WithheldIssue, issue_id)
    return row is not None and row.withheld
