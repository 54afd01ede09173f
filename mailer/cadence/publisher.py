"""What a schedule's slot does, over the real content and delivery services."""

from __future__ import annotations

import logging

from mailer.app.wiring import Runtime
from mailer.cadence.schedules import Drafted
from mailer.content import calendars, curation, feeds
from mailer.content.fetch import FetchPolicy
from mailer.content.models import IssueStatus
from mailer.delivery.campaigns import Summary
from mailer.delivery.models import CampaignState
from mailer.delivery.runner import CampaignRunner
from mailer.mail.transactional import EditorNotice

log = logging.getLogger(__name__)


class RuntimePublisher:
    """The schedules' Publisher: fetch, draft, approve and send through the services."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.last_summary: Summary | None = None
        self._runners: dict[int, CampaignRunner] = {}

    def fetch_policy(self) -> FetchPolicy:
        return FetchPolicy(user_agent=f"mailer/0.1 (+{self.rt.settings.base_url})")

    async def refresh(self, list_slug: str) -> None:
        """Fetch the list's feeds, and read again the calendars its events came from."""
        policy = self.fetch_policy()
        await feeds.fetch_feeds(self.rt.sessions, self.rt.clock, list_slug, policy)
        reports = await calendars.refresh_calendars(
            self.rt.sessions, self.rt.clock, list_slug, policy
        )
        for report in reports:
            if report.outcome == "failed":  # its events are kept; its health says why
                log.warning("calendar %s not refreshed: %s", report.url, report.detail)

    def draft(self, list_slug: str) -> Drafted:
        with self.rt.sessions.begin() as session:
            issue = curation.draft_issue(session, self.rt.clock, list_slug)
            return Drafted(issue.id, sum(1 for e in issue.entries if e.included))

    def discard(self, issue_id: int) -> None:
        with self.rt.sessions.begin() as session:
            issue = curation.get_issue(session, issue_id)
            if issue.status == IssueStatus.DRAFT:
                session.delete(issue)

    def is_approved(self, issue_id: int) -> bool:
        with self.rt.sessions() as session:
            status = curation.get_issue(session, issue_id).status
        return status in (IssueStatus.APPROVED, IssueStatus.SENDING, IssueStatus.SENT)

    def approve(self, issue_id: int) -> None:
        with self.rt.sessions.begin() as session:
            curation.approve_issue(session, self.rt.clock, self.rt.renderer, issue_id)

    async def send(self, issue_id: int) -> bool:
        if issue_id in self._runners:
            return False  # this process is sending it already (a slot or a retry job)
        runner = self._runners[issue_id] = CampaignRunner(self.rt, issue_id)
        try:
            summary = await runner.run()
        finally:
            del self._runners[issue_id]
        self.last_summary = summary
        log.info("issue %s: %s %s", issue_id, summary.state, summary.counts)
        return summary.state == CampaignState.FINISHED

    def stop(self) -> None:
        """Ask running campaigns to pause after their in-flight transactions."""
        for runner in list(self._runners.values()):
            runner.stop("the service is shutting down")

    async def tell_editors(self, editors: list[str], subject: str, body: str) -> None:
        """One mail to each editor's stored address, through the transactional path."""
        await self.rt.mail.deliver(EditorNotice(editor, subject, body) for editor in editors)
