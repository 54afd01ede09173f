"""Campaign state: one live run per issue (claimed, heartbeat), and its end (issue sent).

A run claims the issue's campaign row; a second run is refused while the first
is alive (same host: its pid exists; another host: its heartbeat is recent). A
run that died (SIGKILL, power loss) leaves a claim anyone may take over.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from consent.clock import Clock
from mailer.content import curation
from mailer.content.models import Issue, IssueStatus
from mailer.delivery.models import Campaign, CampaignState, Delivery

HEARTBEAT_STALE = timedelta(minutes=2)


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class CampaignBusy(Exception):
    """Another live process is sending this issue."""


class NotSendable(InvalidInput):
    """The issue does not exist or is not approved."""


@dataclass
class Summary:
    issue_id: int
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    uncertain_found: int = 0
    requeued: int = 0
    note: str = ""
    next_retry: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _alive(runner: str, now: datetime, heartbeat: datetime) -> bool:
    host, _, pid = runner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return now - heartbeat < HEARTBEAT_STALE


def sendable_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotSendable(f"there is no issue {issue_id} (see `mailer issues list`)")
    if issue.status == IssueStatus.DRAFT or issue.compiled is None:
        raise NotSendable(f"issue {issue_id} is a draft: approve it before sending")
    return issue


def claim(session: Session, clock: Clock, issue: Issue, runner: str) -> None:
    """Make `runner` the one live run of the issue's campaign, or raise CampaignBusy."""
    now = clock.now()
    campaign = session.get(Campaign, issue.id, with_for_update=True)
    if campaign is None:
        session.add(
            Campaign(
                issue_id=issue.id,
                state=CampaignState.RUNNING,
                runner=runner,
                started_at=now,
                heartbeat_at=now,
                note="",
            )
        )
    else:
        if (
            campaign.state == CampaignState.RUNNING
            and campaign.runner != runner
            and _alive(campaign.runner, now, campaign.heartbeat_at)
        ):
            raise CampaignBusy(
                f"issue {issue.id} is being sent by {campaign.runner} (heartbeat"
                f" {campaign.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        campaign.state, campaign.runner = CampaignState.RUNNING, runner
        campaign.heartbeat_at, campaign.note, campaign.finished_at = now, "", None
    curation.start_sending(session, clock, issue.id)
    session.flush()


def heartbeat(session: Session, issue_id: int, now: datetime) -> None:
    campaign = session.get(Campaign, issue_id)
    if campaign is not None:
        campaign.heartbeat_at = now


def conclude(session: Session, clock: Clock, issue_id: int, state: str, note: str) -> None:
    """End a run: `finished` marks the issue sent; any other state leaves it sending."""
    now = clock.now()
    campaign = session.get(Campaign, issue_id)
    if campaign is not None:
        campaign.state, campaign.note, campaign.heartbeat_at = state, note[:2000], now
        campaign.runner = ""
        if state == CampaignState.FINISHED:
            campaign.finished_at = now
    if state == CampaignState.FINISHED:
        curation.mark_sent(session, clock, issue_id)


def status(session: Session, issue_id: int) -> Summary:
    """Where the campaign of an issue stands, from the database alone."""
    sendable_issue(session, issue_id)
    counts = {
        str(s): int(n)
        for s, n in session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.status)
        )
    }
    campaign = session.get(Campaign, issue_id)
    next_retry = session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.issue_id == issue_id, Delivery.status == "deferred"
        )
    )
    return Summary(
        issue_id,
        campaign.state if campaign else "not started",
        counts,
        note=campaign.note if campaign else "",
        next_retry=next_retry,
    )


def waiting(session: Session) -> list[int]:
    """Issues whose campaign left deferred copies for a later run."""
    return list(
        session.scalars(
            select(Campaign.issue_id)
            .where(Campaign.state == CampaignState.WAITING)
            .order_by(Campaign.issue_id)
        )
    )
