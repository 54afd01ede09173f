"""The workspace's services, built once per app from the Runtime (each given its share),
and the one place a campaign is started from the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from mailer.accounts.users import UserService
from mailer.app.wiring import Runtime
from mailer.delivery.campaigns import CampaignBusy, NotSendable
from mailer.web.admin.auth import runtime_of
from mailer.web.api.delivery import delivery_out
from mailer.workspace.audit import AuditDesk
from mailer.workspace.issues import IssueDesk
from mailer.workspace.moderation import ContributionDesk, ProposalDesk
from mailer.workspace.people import ListDesk
from mailer.workspace.schedules import ScheduleDesk
from mailer.workspace.segments import SegmentDesk
from mailer.workspace.sources import Sources


@dataclass
class Desks:
    runtime: Runtime

    @cached_property
    def issues(self) -> IssueDesk:
        rt = self.runtime
        return IssueDesk(rt.sessions, rt.clock, rt.renderer, rt.settings, rt.consent, rt.transport)

    @cached_property
    def sources(self) -> Sources:
        rt = self.runtime
        return Sources(rt.sessions, rt.clock, rt.fetch_policy())

    @cached_property
    def schedules(self) -> ScheduleDesk:
        rt = self.runtime
        return ScheduleDesk(rt.sessions, rt.clock, rt.schedules)

    @cached_property
    def lists(self) -> ListDesk:
        return ListDesk(self.runtime.sessions, self.runtime.clock)

    @cached_property
    def audit(self) -> AuditDesk:
        rt = self.runtime
        return AuditDesk(rt.sessions, rt.rights(), rt.settings.database_url)

    @cached_property
    def contributions(self) -> ContributionDesk:
        rt = self.runtime
        return ContributionDesk(rt.contributions, rt.mail, rt.clock)

    @cached_property
    def proposals(self) -> ProposalDesk:
        return ProposalDesk(self.runtime.sessions, self.runtime.clock)

    @cached_property
    def segments(self) -> SegmentDesk:
        rt = self.runtime
        return SegmentDesk(rt.engine, rt.sessions, rt.clock, rt.settings.secret_key)

    @cached_property
    def users(self) -> UserService:
        return UserService(self.runtime.sessions, self.runtime.clock)


def desks(request: Request) -> Desks:
    found: Desks | None = getattr(request.app.state, "admin_desks", None)
    if found is None:
        found = request.app.state.admin_desks = Desks(runtime_of(request))
    return found


async def start_campaign(request: Request, issue_id: int) -> None:
    """Start the send of an approved issue: the ONE call from the workspace into the
    process's campaign service (the run lives under the service's supervisor)."""
    service = runtime_of(request).campaigns
    try:
        await run_in_threadpool(service.check_sendable, issue_id)  # never on the event loop
        service.start(issue_id)
    except CampaignBusy as exc:
        raise NotSendable(str(exc)) from None


async def campaign_progress(request: Request, issue_id: int) -> dict[str, object]:
    """Where the send stands, as the admin API tells it (counts, state, the live run)."""
    view = await runtime_of(request).campaigns.view(issue_id)
    return delivery_out(issue_id, view).model_dump()
