"""Campaign state: one live run per issue (claimed, heartbeat), and its end (issue sent).

A run claims the issue's campaign row under a random runner id of its own, so
two runs in one process are two claimants. A second run is refused while the
first one's heartbeat (written every few seconds, on the injected clock) is
recent; a run that died (SIGKILL, power loss) stops beating and its claim
expires after HEARTBEAT_STALE. No process ids are checked: a reused pid on
another machine or after a restart keeps nothing alive. A run whose claim was
taken over learns it at its next heartbeat and stops.
"""

from __future__ import annotations

import os
import socket
import uuid
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
HEARTBEAT_EVERY = 5.0  # seconds between a live run's heartbeats (well inside STALE)


def new_runner_id() -> str:
    """A fresh claimant: random, with the host and pid only to help a person reading it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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


def _alive(now: datetime, heartbeat: datetime) -> bool:
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
            and _alive(now, campaign.heartbeat_at)
        ):
            expires = campaign.heartbeat_at + HEARTBEAT_STALE
            raise CampaignBusy(
                f"issue {issue.id} is being sent by {campaign.runner} (heartbeat"
                f" {campaign.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); if that run is gone, its"
                f" claim expires at {expires:%H:%M:%S} UTC"
            )
        campaign.state, campaign.runner = CampaignState.RUNNING, runner
        campaign.heartbeat_at, campaign.note, campaign.finished_at = now, "", None
    curation.start_sending(session, clock, issue.id)
    session.flush()


def heartbeat(session: Session, issue_id: int, runner: str, now: datetime) -> bool:
    """Say that `runner` is alive; False when its claim was taken over (it must stop)."""
    campaign = session.get(Campaign, issue_id, with_for_update=True)
    if campaign is None or campaign.runner != runner:
        return False
    campaign.heartbeat_at = now
    return True


def conclude(
    session: Session, clock: Clock, issue_id: int, runner: str, state: str, note: str
) -> bool:
    """End a run: `finished` marks the issue sent; any other state leaves it sending.

    Only the claim's owner concludes: a run whose claim was taken over leaves the
    campaign to the new owner (False)."""
    now = clock.now()
    campaign = session.get(Campaign, issue_id, with_for_update=True)
    if campaign is not None and campaign.runner != runner:
        return False
    if campaign is not None:
        campaign.state, campaign.note, campaign.heartbeat_at = state, note[:2000], now
        campaign.runner = ""
        if state == CampaignState.FINISHED:
            campaign.finished_at = now
    if state == CampaignState.FINISHED:
        curation.mark_sent(session, clock, issue_id)
    return True


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


def recent_rate(session: Session, issue_id: int, now: datetime, seconds: int = 60) -> float:
    """Copies accepted a second over the last `seconds`, however the campaign is run."""
    since = now - timedelta(seconds=seconds)
    sent = session.scalar(
        select(func.count()).where(Delivery.issue_id == issue_id, Delivery.sent_at >= since)
    )
    return int(sent or 0) / seconds


def waiting(session: Session) -> list[int]:
    """Issues whose campaign left deferred copies for a later run."""
    return list(
        session.scalars(
            select(Campaign.issue_id)
            .where(Campaign.state == CampaignState.WAITING)
            .order_by(Campaign.issue_id)
        )
    )
