"""What contributions hold about a person: the contact address of what they sent in.

A `consent.subject_data.SubjectData` (joined in mailer.app.subjects): a subscriber's
export lists the contributions whose contact is their address, and their erasure
empties that address (the contribution itself, an organisation's news, stays).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consent.models import MailingList
from mailer.contributions.models import Contribution


class ContributionContacts:
    name = "contributions"

    def export(self, session: Session, subject_ref: str, email: str) -> list[dict[str, Any]]:
        rows = session.execute(
            select(Contribution, MailingList.slug)
            .join(MailingList, MailingList.id == Contribution.list_id)
            .where(Contribution.contact_email == email)
            .order_by(Contribution.id)
        )
        return [
            {
                "list": slug,
                "title": c.title,
                "organisation": c.organisation,
                "status": c.status,
                "submitted_at": c.submitted_at.isoformat(),
                "decided_at": c.decided_at.isoformat() if c.decided_at else None,
                "contact": c.contact_email,
            }
            for c, slug in rows
        ]

    def erase(self, session: Session, subject_ref: str, email: str) -> None:
        session.execute(
            update(Contribution)
            .where(Contribution.contact_email == email)
            .values(contact_email=None)
        )
