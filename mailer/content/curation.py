"""Issues of a list: draft from what is new, curate (pick, order, annotate), approve, reopen.

An issue is addressed by its `id` (the N of `mailer issues show N`); readers see
its per-list `number`. A draft gathers the items first seen since the list's last
issue that left draft (approved, sending or sent), and the occurrences of events
within the coming `events_horizon`. Approval freezes the issue: its content is
snapshotted and compiled once; any change needs `reopen` first, which is refused
once sending has begun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from consent.addresses import InvalidInput, clean_text
from consent.clock import Clock
from consent.lists import get_list
from consent.models import MailingList
from mailer.content import additions, surveys
from mailer.content.events import upcoming
from mailer.content.issue_content import build_content
from mailer.content.links import issue_links
from mailer.content.models import FeedItem, Issue, IssueEntry, IssueStatus
from mailer.content.newsletter import compile_issue
from mailer.content.publication import publication_of
from mailer.mail.render import Renderer

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class UnknownIssue(LookupError):
    def __init__(self, issue_id: object, list_slug: str | None = None) -> None:
        where = f" of {list_slug}" if list_slug else ""
        super().__init__(f"no issue {issue_id}{where} (see `mailer issues list`)")


class UnknownEntry(LookupError):
    def __init__(self, issue_id: int, ref: object) -> None:
        super().__init__(
            f"issue {issue_id} has no entry {ref} (see `mailer issues show {issue_id}`)"
        )


class IssueFrozen(InvalidInput):
    """A change asked of an issue that is not a draft."""


@dataclass(frozen=True)
class DraftPolicy:
    events_horizon: timedelta = timedelta(days=62)
    series_dates: int = 2  # dates of one recurring series included; the rest left out


@dataclass(frozen=True)
class IssueChanges:
    subject: str | None = None
    preheader: str | None = None
    introduction: str | None = None
    highlight_label: str | None = None
    clear_highlight: bool = False


@dataclass(frozen=True)
class EntryChanges:
    included: bool | None = None
    position: int | None = None  # 1-based, among the news entries
    section: str | None = None  # "" returns the entry to its feed's section
    note: str | None = None
    highlight: bool | None = None


def _text(value: str, field: str, limit: int) -> str:
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} contains a control character")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters")
    return value


def get_issue(session: Session, issue_id: int, list_slug: str | None = None) -> Issue:
    issue = session.scalar(
        select(Issue)
        .where(Issue.id == issue_id)
        .options(selectinload(Issue.entries), selectinload(Issue.mailing_list))
    )
    if issue is None or (list_slug is not None and issue.mailing_list.slug != list_slug):
        raise UnknownIssue(issue_id, list_slug)
    return issue


def issues_of(session: Session, list_slug: str) -> list[Issue]:
    mailing_list = get_list(session, list_slug)
    return list(
        session.scalars(
            select(Issue)
            .where(Issue.list_id == mailing_list.id)
            .options(selectinload(Issue.entries), selectinload(Issue.mailing_list))
            .order_by(Issue.number)
        )
    )


def default_subject(mailing_list: MailingList, number: int, when: datetime) -> str:
    day = when.astimezone(ZoneInfo(mailing_list.timezone))
    return f"{mailing_list.name} #{number} – {day:%B %Y}"


def draft_issue(
    session: Session, clock: Clock, list_slug: str, policy: DraftPolicy | None = None
) -> Issue:
    """A new draft with everything new since the last issue that left draft."""
    policy = policy or DraftPolicy()
    mailing_list = get_list(session, list_slug)
    now = clock.now()
    since = session.scalar(
        select(func.max(Issue.gathered_until)).where(
            Issue.list_id == mailing_list.id, Issue.status != IssueStatus.DRAFT
        )
    )
    number = 1 + (
        session.scalar(select(func.max(Issue.number)).where(Issue.list_id == mailing_list.id)) or 0
    )
    issue = Issue(
        list_id=mailing_list.id,
        number=number,
        status=IssueStatus.DRAFT,
        subject=default_subject(mailing_list, number, now),
        preheader="",
        introduction="",
        highlight_label="Highlight",
        issue_date=now.astimezone(ZoneInfo(mailing_list.timezone)).date(),
        gathered_since=since,
        gathered_until=now,
        created_at=now,
        updated_at=now,
    )
    session.add(issue)
    session.flush()
    query = select(FeedItem).where(
        FeedItem.list_id == mailing_list.id,
        FeedItem.backlog.is_(False),
        FeedItem.first_seen_at <= now,
    )
    if since is not None:
        query = query.where(FeedItem.first_seen_at > since)
    items = sorted(
        session.scalars(query),
        key=lambda i: (i.published_at or i.first_seen_at, i.id),
        reverse=True,
    )
    entries = [IssueEntry(kind="item", item_id=item.id, included=True) for item in items]
    per_event: dict[int, int] = {}
    for occurrence in upcoming(session, list_slug, now, now + policy.events_horizon):
        # A weekly series would fill the issue: its later dates come in left out.
        seen = per_event[occurrence.event_id] = per_event.get(occurrence.event_id, 0) + 1
        entries.append(
            IssueEntry(
                kind="event",
                event_id=occurrence.event_id,
                included=seen <= policy.series_dates,
                starts_at=occurrence.starts_at,
                ends_at=occurrence.ends_at,
            )
        )
    for index, entry in enumerate(entries, start=1):
        entry.issue_id, entry.ref, entry.position = issue.id, index, index
        entry.section, entry.note, entry.highlight = "", "", False
        session.add(entry)
    session.flush()
    session.refresh(issue, ["entries"])
    return issue


def _editable(session: Session, issue_id: int, list_slug: str | None) -> Issue:
    issue = get_issue(session, issue_id, list_slug)
    if issue.status != IssueStatus.DRAFT:
        hint = (
            f"run `mailer issues reopen {issue.id}` to change it"
            if issue.status == IssueStatus.APPROVED
            else "it can no longer change"
        )
        raise IssueFrozen(f"issue {issue.id} is {issue.status.value}: {hint}")
    return issue


def update_issue(
    session: Session,
    clock: Clock,
    issue_id: int,
    changes: IssueChanges,
    list_slug: str | None = None,
) -> Issue:
    issue = _editable(session, issue_id, list_slug)
    if changes.subject is not None:
        issue.subject = clean_text(changes.subject, "the subject", 300)
    if changes.preheader is not None:
        issue.preheader = clean_text(changes.preheader, "the preheader", 300, required=False)
    if changes.introduction is not None:
        issue.introduction = _text(changes.introduction, "the introduction", 10_000)
    if changes.highlight_label is not None:
        issue.highlight_label = clean_text(changes.highlight_label, "the highlight label", 100)
    if changes.clear_highlight:
        for entry in issue.entries:
            entry.highlight = False
    issue.updated_at = clock.now()
    return issue


def _move(issue: Issue, entry: IssueEntry, position: int) -> None:
    news = [e for e in sorted(issue.entries, key=lambda e: e.position) if e.kind == "item"]
    if entry.kind != "item":
        raise InvalidInput("events are listed soonest first; they cannot be moved")
    if position < 1:
        raise InvalidInput("positions start at 1")
    news.remove(entry)
    news.insert(min(position, len(news) + 1) - 1, entry)
    others = [e for e in issue.entries if e.kind != "item"]
    for index, each in enumerate([*news, *sorted(others, key=lambda e: e.position)], start=1):
        each.position = index


def update_entry(
    session: Session,
    clock: Clock,
    issue_id: int,
    ref: int,
    changes: EntryChanges,
    list_slug: str | None = None,
) -> IssueEntry:
    issue = _editable(session, issue_id, list_slug)
    entry = next((e for e in issue.entries if e.ref == ref), None)
    if entry is None:
        raise UnknownEntry(issue.id, ref)
    if changes.included is not None:
        entry.included = changes.included
    if changes.section is not None:
        if entry.kind != "item":
            raise InvalidInput("events have a section of their own")
        entry.section = clean_text(changes.section, "the section", 100, required=False)
    if changes.note is not None:
        entry.note = _text(changes.note, "the note", 2000)
    if changes.highlight is not None:
        for each in issue.entries:
            each.highlight = False
        entry.highlight = changes.highlight
        if changes.highlight:
            entry.included = True
    if changes.position is not None:
        _move(issue, entry, changes.position)
    issue.updated_at = clock.now()
    return entry


def approve_issue(
    session: Session,
    clock: Clock,
    renderer: Renderer,
    issue_id: int,
    list_slug: str | None = None,
) -> Issue:
    """Freeze the issue: snapshot its content and compile it once, for sending.

    The list's publication switches are frozen with it (issue 14): whether its clicks
    are counted (the mail says so, and its links are listed for the redirect) and
    whether it has a public archive (the mail then carries List-Archive).
    """
    issue = _editable(session, issue_id, list_slug)
    if not any(e.included for e in issue.entries) and not issue.introduction.strip():
        raise InvalidInput(f"issue {issue.id} is empty: include an entry or write an introduction")
    now = clock.now()
    publication = publication_of(session, issue.list_id)
    content = replace(
        build_content(issue, now, additions.gather(session, issue, now, settle=True)),
        clicks_counted=publication.count_clicks,
    )
    compiled = replace(
        compile_issue(renderer, content),
        counted_links=issue_links(content) if publication.count_clicks else (),
        archived=publication.archive,
    )
    surveys.claim(session, issue, now)  # issue 13: shown once, by this issue
    issue.content = content.as_record()
    issue.compiled = compiled.as_record()
    issue.issue_date = now.astimezone(ZoneInfo(issue.mailing_list.timezone)).date()
    issue.status = IssueStatus.APPROVED
    issue.approved_at = issue.updated_at = now
    return issue


def reopen_issue(
    session: Session, clock: Clock, issue_id: int, list_slug: str | None = None
) -> Issue:
    """Return an approved issue to draft; refused once sending has begun."""
    issue = get_issue(session, issue_id, list_slug)
    if issue.status == IssueStatus.DRAFT:
        return issue
    if issue.status != IssueStatus.APPROVED:
        raise IssueFrozen(f"issue {issue.id} is {issue.status.value}: it cannot be reopened")
    issue.status = IssueStatus.DRAFT
    surveys.release(session, issue)  # issue 13: the next approval shows them
    issue.content = issue.compiled = None
    issue.approved_at = None
    issue.updated_at = clock.now()
    return issue


def start_sending(session: Session, clock: Clock, issue_id: int) -> Issue:
    """approved -> sending (for delivery); repeating it is harmless."""
    issue = get_issue(session, issue_id)
    if issue.status not in (IssueStatus.APPROVED, IssueStatus.SENDING):
        raise IssueFrozen(f"issue {issue.id} is {issue.status.value}: approve it before sending")
    issue.status = IssueStatus.SENDING
    issue.updated_at = clock.now()
    return issue


def mark_sent(session: Session, clock: Clock, issue_id: int) -> Issue:
    """sending -> sent, stamping `sent_at`; repeating it is harmless."""
    issue = get_issue(session, issue_id)
    if issue.status == IssueStatus.SENT:
        return issue
    if issue.status != IssueStatus.SENDING:
        raise IssueFrozen(f"issue {issue.id} is {issue.status.value}, not sending")
    issue.status = IssueStatus.SENT
    issue.sent_at = issue.updated_at = clock.now()
    return issue
