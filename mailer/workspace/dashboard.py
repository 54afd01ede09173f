"""The editor's dashboard: next slots per list, drafts waiting, the last sends, failing feeds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from consent.clock import Clock
from consent.models import MailingList
from mailer.cadence import cron
from mailer.cadence.models import Schedule, ScheduleSlot
from mailer.content.models import Feed, Issue, IssueStatus
from mailer.delivery.models import Delivery

SLOTS_SHOWN = 3
SENDS_SHOWN = 5


@dataclass(frozen=True)
class SlotPlan:
    list_slug: str
    list_name: str
    schedule_id: int
    local: str  # the slot's wall-clock time in the schedule's zone
    timezone: str
    at: datetime
    draft_at: datetime
    happens: str


@dataclass(frozen=True)
class IssueLine:
    id: int
    list_slug: str
    number: int
    subject: str
    status: str
    when: datetime | None
    counts: dict[str, int]


@dataclass(frozen=True)
class FeedLine:
    id: int
    list_slug: str
    label: str
    failures: int
    last_error: str


@dataclass(frozen=True)
class Dashboard:
    slots: list[SlotPlan]
    waiting: list[IssueLine]
    sends: list[IssueLine]
    failing: list[FeedLine]


def _happens(schedule: Schedule, row: ScheduleSlot | None) -> str:
    if row is not None and row.status in ("drafted", "held", "sending"):
        return {
            "drafted": f"issue {row.issue_id} drafted; "
            + ("needs approval" if schedule.approval == "required" else "sent at the slot"),
            "held": f"issue {row.issue_id} held: sent once approved",
            "sending": f"issue {row.issue_id} being sent",
        }[row.status]
    lead = cron.format_duration(timedelta(minutes=schedule.lead_minutes))
    gate = "held unless approved" if schedule.approval == "required" else "sent automatically"
    floor = f", skipped under {schedule.min_items} new entries" if schedule.min_items else ""
    return f"drafted {lead} before, {gate}{floor}"


def _slots(session: Session, now: datetime) -> list[SlotPlan]:
    plans: list[SlotPlan] = []
    for schedule in session.scalars(
        select(Schedule).options(selectinload(Schedule.list)).order_by(Schedule.id)
    ):
        lead = timedelta(minutes=schedule.lead_minutes)
        ahead = list(cron.slots(schedule.cron, schedule.timezone, now, now + timedelta(days=400)))
        ahead = ahead[:SLOTS_SHOWN]
        rows = {
            r.slot_key: r
            for r in session.scalars(
                select(ScheduleSlot).where(
                    ScheduleSlot.schedule_id == schedule.id,
                    ScheduleSlot.slot_key.in_([s.key for s in ahead]),
                )
            )
        }
        for slot in ahead:
            plans.append(
                SlotPlan(
                    schedule.list.slug,
                    schedule.list.name,
                    schedule.id,
                    slot.key.replace("T", " "),
                    schedule.timezone,
                    slot.at,
                    slot.at - lead,
                    _happens(schedule, rows.get(slot.key)),
                )
            )
    return sorted(plans, key=lambda p: p.at)


def _counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for issue_id, status, n in session.execute(
            select(Delivery.issue_id, Delivery.status, func.count())
            .where(Delivery.issue_id.in_(ids))
            .group_by(Delivery.issue_id, Delivery.status)
        ):
            counts[issue_id][str(status)] = int(n)
    return counts


def _line(issue: Issue, slug: str, counts: dict[str, int] | None = None) -> IssueLine:
    when = issue.sent_at or issue.approved_at or issue.updated_at
    return IssueLine(
        issue.id, slug, issue.number, issue.subject, issue.status.value, when, counts or {}
    )


def dashboard(sessions: sessionmaker[Session], clock: Clock) -> Dashboard:
    now = clock.now()
    with sessions() as session:
        slugs: dict[int, str] = {
            i: s for i, s in session.execute(select(MailingList.id, MailingList.slug))
        }
        waiting = [
            _line(i, slugs[i.list_id])
            for i in session.scalars(
                select(Issue)
                .where(Issue.status.in_((IssueStatus.DRAFT, IssueStatus.APPROVED)))
                .order_by(Issue.updated_at.desc())
                .limit(20)
            )
        ]
        sent = _last_sent(session)
        failing = [
            FeedLine(f.id, slugs[f.list_id], f.label, f.failures, f.last_error)
            for f in session.scalars(
                select(Feed).where(Feed.failures > 0).order_by(Feed.failures.desc()).limit(20)
            )
        ]
        return Dashboard(
            _slots(session, now),
            waiting,
            [_line(i, slugs[i.list_id]) for i in sent],
            failing,
        )


def _last_sent(session: Session) -> list[Issue]:
    return list(
        session.scalars(
            select(Issue)
            .where(Issue.status.in_((IssueStatus.SENDING, IssueStatus.SENT)))
            .order_by(Issue.updated_at.desc())
            .limit(SENDS_SHOWN)
        )
    )


def last_sends(sessions: sessionmaker[Session]) -> list[IssueLine]:
    """The last sends with their delivery counts: counting every copy of a large send
    takes a while, so the dashboard loads this part after the page."""
    with sessions() as session:
        slugs: dict[int, str] = {
            i: s for i, s in session.execute(select(MailingList.id, MailingList.slug))
        }
        sent = _last_sent(session)
        counts = _counts(session, [i.id for i in sent])
        return [_line(i, slugs[i.list_id], counts[i.id]) for i in sent]
