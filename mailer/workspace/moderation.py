"""Moderation in the workspace: contributions sent in (issue 14) and proposals to the cluster
catalogue (issue 13). Each decision writes its operations-log line in the decision's own
transaction; a contribution's contact is told by mail after it commits, as the CLI does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from mailer.accounts import oplog
from mailer.accounts.oplog import Actor
from mailer.clusters import proposals
from mailer.clusters.models import ClusterProposal
from mailer.contributions.service import ContributionService, ContributionView, Decided
from mailer.mail.transactional import TransactionalMail

DECIDED_SHOWN = 50


@dataclass(frozen=True)
class Queue:
    """The contributions editors see: those waiting (confirmed by their contact), then the
    latest decided. Unconfirmed ones are nobody's business yet."""

    pending: list[ContributionView]
    decided: list[ContributionView]


@dataclass(frozen=True)
class Decision:
    view: ContributionView
    mails: int  # mails the decision called for (none once the contact's address is gone)
    told: int  # of them, accepted by the relay


class ContributionDesk:
    def __init__(self, service: ContributionService, mail: TransactionalMail, clock: Clock) -> None:
        self.service = service
        self.mail = mail
        self.clock = clock

    def queue(self, list_slug: str | None = None) -> Queue:
        pending = self.service.listing(list_slug, "pending")
        decided = self.service.listing(list_slug, "accepted")
        decided += self.service.listing(list_slug, "rejected")
        decided.sort(key=lambda v: (v.decided_at is not None, v.decided_at, v.id), reverse=True)
        return Queue(pending, decided[:DECIDED_SHOWN])

    def show(self, contribution_id: int) -> ContributionView:
        return self.service.show(contribution_id)

    def _log(self, actor: Actor, action: str, **extra: Any) -> Decided:
        def log(session: Session, view: ContributionView) -> None:
            detail = {"list": view.list_slug, "kind": view.kind, **extra}
            oplog.record(session, actor, self.clock.now(), action, "contribution", view.id, detail)

        return log

    async def accept(self, actor: Actor, contribution_id: int) -> Decision:
        """Into the list's next draft; then its contact is told."""
        log = self._log(actor, "contribution accepted")
        view, mails = await asyncio.to_thread(self.service.accept, contribution_id, log)
        return Decision(view, len(mails), await self.mail.deliver(mails))

    async def reject(self, actor: Actor, contribution_id: int, reason: str) -> Decision:
        """Refused, with the reason its contact is told."""
        log = self._log(actor, "contribution rejected", reason=reason.strip()[:1000])
        view, mails = await asyncio.to_thread(self.service.reject, contribution_id, reason, log)
        return Decision(view, len(mails), await self.mail.deliver(mails))


class ProposalDesk:
    """Proposals from the public form (/clusters/propose): what each would change, and
    the editors' decision. Only an accepted proposal touches the catalogue."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def pending(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [
                {**proposals.record(p), "changes": proposals.changes(session, p)}
                for p in proposals.pending(session)
            ]

    def accept(self, actor: Actor, proposal_id: int) -> str:
        """ "added", "updated" or "unchanged"; InvalidInput when it cannot be applied."""
        with self.sessions.begin() as session:
            now = self.clock.now()
            outcome = proposals.accept(session, now, proposal_id)
            proposal = session.get_one(ClusterProposal, proposal_id)
            detail = {"kind": proposal.kind, "name": proposal.name, "outcome": outcome}
            oplog.record(session, actor, now, "proposal accepted", "cluster proposal",
                         proposal_id, detail)  # fmt: skip
            return outcome

    def reject(self, actor: Actor, proposal_id: int, reason: str) -> None:
        with self.sessions.begin() as session:
            now = self.clock.now()
            proposals.reject(session, now, proposal_id, reason)
            proposal = session.get_one(ClusterProposal, proposal_id)
            detail = {"kind": proposal.kind, "name": proposal.name, "reason": proposal.reason}
            oplog.record(session, actor, now, "proposal rejected", "cluster proposal",
                         proposal_id, detail)  # fmt: skip
