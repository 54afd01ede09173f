"""Issues in the workspace: draft, curate, approve, reopen, test and send, each logged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from consent.workflow import ConsentService
from mailer.accounts import oplog
from mailer.accounts.models import Operation
from mailer.accounts.oplog import Actor
from mailer.app.settings import Settings
from mailer.archive import service as archive
from mailer.cadence import cron
from mailer.cadence.models import Schedule, ScheduleSlot
from mailer.clicks.stats import IssueStats, issue_stats
from mailer.content import curation
from mailer.content.curation import EntryChanges, IssueChanges
from mailer.content.models import Issue, IssueStatus
from mailer.content.publication import publication_of
from mailer.content.views import issue_detail, issue_summary
from mailer.delivery import campaigns, previews
from mailer.mail.render import Renderer
from mailer.mail.transport import SendResult, Transport


@dataclass(frozen=True)
class Plan:
    """What the schedule does (or did) with an issue, in words."""

    text: str
    at: datetime | None = None


EDITS_COALESCED = timedelta(minutes=10)


class IssueDesk:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        renderer: Renderer,
        settings: Settings,
        consent: ConsentService,
        transport: Transport,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.renderer = renderer
        self.settings = settings
        self.consent = consent
        self.transport = transport

    def _log(
        self, session: Session, actor: Actor, action: str, issue: Issue, **detail: Any
    ) -> None:
        detail = {"list": issue.mailing_list.slug, "number": issue.number, **detail}
        oplog.record(session, actor, self.clock.now(), action, "issue", issue.id, detail)

    # -- reading ------------------------------------------------------------------

    def issues(self, list_slug: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [issue_summary(i) for i in curation.issues_of(session, list_slug)]

    def detail(self, issue_id: int) -> dict[str, Any]:
        with self.sessions() as session:
            issue = curation.get_issue(session, issue_id)
            record = issue_detail(issue)
            record["timezone"] = issue.mailing_list.timezone
            record["list_name"] = issue.mailing_list.name
            record["updated_at"] = issue.updated_at
            record["plan"] = self._plan(session, issue)
            record["withheld"] = archive.is_withheld(session, issue.id)
            record["archive_on"] = publication_of(session, issue.list_id).archive
            return record

    def figures(self, issue_id: int) -> IssueStats:
        """Copies sent, bounces, complaints, unsubscribes and clicks, as `mailer issues stats`."""
        with self.sessions() as session:
            return issue_stats(session, issue_id)

    def _plan(self, session: Session, issue: Issue) -> Plan:
        slot = session.scalar(
            select(ScheduleSlot)
            .where(ScheduleSlot.issue_id == issue.id)
            .order_by(ScheduleSlot.slot_at.desc())
        )
        if slot is not None:
            if slot.status == "drafted" and issue.status == IssueStatus.APPROVED:
                return Plan("approved: its schedule sends it at the slot", slot.slot_at)
            return Plan(_SLOT_WORDS.get(slot.status, slot.status), slot.slot_at)
        if issue.status != IssueStatus.DRAFT and issue.status != IssueStatus.APPROVED:
            return Plan(f"{issue.status.value}; not part of a schedule")
        schedule = session.scalar(
            select(Schedule).where(Schedule.list_id == issue.list_id).order_by(Schedule.id)
        )
        if schedule is None:
            return Plan("no schedule: it goes out when an admin sends it")
        upcoming = cron.next_slot(schedule.cron, schedule.timezone, self.clock.now())
        if issue.status == IssueStatus.APPROVED:
            return Plan("approved: an admin sends it (the schedule drafts its own issues)")
        gate = "held until approved" if schedule.approval == "required" else "sent automatically"
        return Plan(f"the schedule drafts its own issue for the next slot ({gate})", upcoming.at)

    # -- changing -----------------------------------------------------------------

    def draft(self, actor: Actor, list_slug: str) -> int:
        with self.sessions.begin() as session:
            issue = curation.draft_issue(session, self.clock, list_slug)
            self._log(session, actor, "issue drafted", issue, entries=len(issue.entries))
            return issue.id

    def edit(self, actor: Actor, issue_id: int, changes: IssueChanges) -> None:
        """Change the texts; the preview saves as the editor types, so one log line stands
        for one person's edits of one issue within ten minutes."""
        with self.sessions.begin() as session:
            issue = curation.update_issue(session, self.clock, issue_id, changes)
            recent = session.scalar(
                select(Operation.id).where(
                    Operation.object_type == "issue",
                    Operation.object_id == str(issue_id),
                    Operation.action == "issue edited",
                    Operation.actor == actor.email,
                    Operation.at > self.clock.now() - EDITS_COALESCED,
                )
            )
            if recent is None:
                self._log(session, actor, "issue edited", issue)

    def edit_entry(self, actor: Actor, issue_id: int, ref: int, changes: EntryChanges) -> None:
        with self.sessions.begin() as session:
            curation.update_entry(session, self.clock, issue_id, ref, changes)
            issue = curation.get_issue(session, issue_id)
            done = {k: v for k, v in changes.__dict__.items() if v is not None and k != "note"}
            if changes.note is not None:
                done["note"] = "changed"
            self._log(session, actor, "entry edited", issue, entry=ref, **done)

    def approve(self, actor: Actor, issue_id: int) -> None:
        with self.sessions.begin() as session:
            issue = curation.approve_issue(session, self.clock, self.renderer, issue_id)
            self._log(session, actor, "issue approved", issue)

    def reopen(self, actor: Actor, issue_id: int) -> None:
        with self.sessions.begin() as session:
            issue = curation.reopen_issue(session, self.clock, issue_id)
            self._log(session, actor, "issue reopened", issue)

    def withhold(self, actor: Actor, issue_id: int, withheld: bool) -> None:
        """Keep the issue out of its list's public archive, or show it there again."""
        with self.sessions.begin() as session:
            issue = archive.withhold(session, self.clock, issue_id, withheld)
            action = "issue withheld from the archive" if withheld else "issue shown in the archive"
            self._log(session, actor, action, issue)

    async def test(self, actor: Actor, issue_id: int) -> SendResult:
        """One copy marked as a test to the actor's own address, draft or approved."""
        envelope = await asyncio.to_thread(
            previews.test_copy,
            issue_id,
            actor.email,
            sessions=self.sessions,
            clock=self.clock,
            renderer=self.renderer,
            settings=self.settings,
            consent=self.consent,
        )
        result = await self.transport.send(envelope)

        def log() -> None:
            with self.sessions.begin() as session:
                issue = curation.get_issue(session, issue_id)
                self._log(session, actor, "test copy sent", issue, accepted=result.ok)

        await asyncio.to_thread(log)
        return result

    async def send(
        self, actor: Actor, issue_id: int, start: Callable[[int], Awaitable[None]]
    ) -> None:
        """Start the campaign of an approved issue through `start`, and log who did."""

        def check() -> None:
            with self.sessions() as session:
                campaigns.sendable_issue(session, issue_id)

        def log() -> None:
            with self.sessions.begin() as session:
                self._log(session, actor, "issue sent", curation.get_issue(session, issue_id))

        await asyncio.to_thread(check)
        await start(issue_id)
        await asyncio.to_thread(log)


_SLOT_WORDS = {
    "drafting": "being drafted by its schedule",
    "drafted": "drafted by its schedule: approve it before the slot, or it is held",
    "held": "held at its slot: it goes out as soon as it is approved",
    "sending": "being sent by its schedule",
    "sent": "sent by its schedule",
    "missed": "missed: its slot passed beyond the grace time",
    "skipped": "skipped",
    "failed": "failed at its slot",
}
