"""The mails a contribution calls for: the check of its contact address, and the decision.

Both go through the transactional path (mailer.mail.transactional): the envelope's
only recipient is the stored, normalised contact address.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.mail.headers import Mailbox
from mailer.mail.transactional import Letter, Stationery, mail_kind


@dataclass(frozen=True)
class ConfirmContribution:
    email: str
    list_slug: str
    title: str
    token: str


@dataclass(frozen=True)
class ContributionDecided:
    email: str
    list_slug: str
    title: str
    accepted: bool
    reason: str


def _facts(slug: str, s: Stationery) -> dict[str, object]:
    facts = s.list_facts(slug)
    return {
        "list_name": facts["list_name"],
        "list_slug": facts["list_slug"],
        "controller_name": facts["controller_name"],
        "controller_contact": facts["controller_contact"],
    }


@mail_kind(ConfirmContribution)
def confirm_contribution(event: ConfirmContribution, s: Stationery) -> Letter:
    facts = _facts(event.list_slug, s)
    return Letter(
        to=Mailbox.of(event.email),
        subject=f"Please confirm your contribution to {facts['list_name']}",
        template="email/contribution_confirm",
        context={
            **facts,
            "contribution_title": event.title,
            "confirm_url": f"{s.settings.base_url}/contribute/confirm/{event.token}",
            "ttl_days": s.settings.pending_ttl,
            "retention_days": s.settings.contribution_retention,
        },
    )


@mail_kind(ContributionDecided)
def contribution_decided(event: ContributionDecided, s: Stationery) -> Letter:
    facts = _facts(event.list_slug, s)
    verdict = "accepted" if event.accepted else "not accepted"
    return Letter(
        to=Mailbox.of(event.email),
        subject=f"Your contribution to {facts['list_name']} was {verdict}",
        template="email/contribution_decision",
        context={
            **facts,
            "contribution_title": event.title,
            "accepted": event.accepted,
            "reason": event.reason,
            "retention_days": s.settings.contribution_retention,
        },
    )
