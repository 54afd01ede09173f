"""The workspace's services, built once per app from the Runtime (each given its share),
and the one place a campaign is started from the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fastapi import HTTPException, Request

from mailer.accounts.users import UserService
from mailer.app.wiring import Runtime
from mailer.delivery.campaigns import NotSendable
from mailer.web.admin.auth import runtime_of
from mailer.workspace.audit import AuditDesk
from mailer.workspace.issues import IssueDesk
from mailer.workspace.people import ListDesk
from mailer.workspace.schedules import ScheduleDesk
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
    def users(self) -> UserService:
        return UserService(self.runtime.sessions, self.runtime.clock)


def desks(request: Request) -> Desks:
    found: Desks | None = getattr(request.app.state, "admin_desks", None)
    if found is None:
        found = request.app.state.admin_desks = Desks(runtime_of(request))
    return found


async def start_campaign(request: Request, issue_id: int) -> None:
    """Start the send of an approved issue. The ONE call from the workspace into the
    campaign machinery: today the admin API's entry point (mailer/web/api/delivery.py)."""
    from mailer.web.api import delivery

    try:
        await delivery.send(issue_id, delivery.SendIn(), request, runtime_of(request))
    except HTTPException as exc:
        raise NotSendable(str(exc.detail)) from None


async def campaign_progress(request: Request, issue_id: int) -> dict[str, object]:
    """Where the send stands, as the admin API tells it (counts, state, the live run)."""
    from mailer.web.api import delivery

    found = await delivery.delivery(issue_id, request, runtime_of(request))
    return found.model_dump()
