"""What a schedule's slot does, over the real content and delivery services."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from mailer.cadence.schedules import Drafted
from mailer.content import calendars, curation, feeds
from mailer.content.fetch import FetchPolicy
from mailer.content.models import IssueStatus
from mailer.delivery.campaign_service import AlreadyRunning, CampaignService
from mailer.delivery.models import CampaignState
from mailer.mail.render import Renderer
from mailer.mail.transactional import EditorNotice, TransactionalMail

log = logging.getLogger(__name__)


class ServicePublisher:
    """The schedules' Publisher: fetch, draft, approve and send through the services.

    `campaigns` runs an issue's campaign (the process's one owner of campaigns, which
    the CLI and the API use too); `mail` tells editors.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        renderer: Renderer,
        fetch_policy: FetchPolicy,
        mail: TransactionalMail,
        campaigns: CampaignService,
    ) -> None:
        self.sessions, self.clock, self.renderer = sessions, clock, renderer
        self.policy, self.mail, self.campaigns = fetch_policy, mail, campaigns

    async def refresh(self, list_slug: str) -> None:
        """Fetch the list's feeds, and read again the calendars its events came from."""
        await feeds.fetch_feeds(self.sessions, self.clock, list_slug, self.policy)
        reports = await calendars.refresh_calendars(
            self.sessions, self.clock, list_slug, self.policy
        )
        for report in reports:
            if report.outcome == "failed":  # its events are kept; its health says why
                log.warning("calendar %s not refreshed: %s", report.url, report.detail)

    def draft(self, list_slug: str) -> Drafted:
        with self.sessions.begin() as session:
            issue = curation.draft_issue(session, self.clock, list_slug)
            return Drafted(issue.id, sum(1 for e in issue.entries if e.included))

    def discard(self, issue_id: int) -> None:
        with self.sessions.begin() as session:
            issue = curation.get_issue(session, issue_id)
            if issue.status == IssueStatus.DRAFT:
                session.delete(issue)

    def is_approved(self, issue_id: int) -> bool:
        with self.sessions() as session:
            status = curation.get_issue(session, issue_id).status
        return status in (IssueStatus.APPROVED, IssueStatus.SENDING, IssueStatus.SENT)

    def approve(self, issue_id: int) -> None:
        with self.sessions.begin() as session:
            curation.approve_issue(session, self.clock, self.renderer, issue_id)

    async def send(self, issue_id: int) -> bool:
        if self.campaigns.via_workers:
            return await self.campaigns.through_workers(issue_id)
        try:
            summary = await self.campaigns.run(issue_id)
        except AlreadyRunning:
            return False  # this process is sending it already (a slot, a retry job, the API)
        log.info("issue %s: %s %s", issue_id, summary.state, summary.counts)
        return summary.state == CampaignState.FINISHED

    async def tell_editors(self, editors: list[str], subject: str, body: str) -> None:
        """One mail to each editor's stored address, through the transactional path."""
        await self.mail.deliver(EditorNotice(editor, subject, body) for editor in editors)
