"""What delivery holds about a person, for their export (Art. 15/20) and their erasure (17).

A `consent.subject_data.SubjectData`: `mailer.app.subjects.contributions` hands it
to the rights service. The export lists every copy of every issue (when, status,
the relay's reply, the Message-ID); erasure removes those rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import MailingList, Subscriber
from mailer.content.models import Issue
from mailer.delivery.models import Delivery


def _iso(value: Any) -> str | None:
    return utc(value).isoformat() if value is not None else None


class DeliveryData:
    name = "deliveries"

    def export(self, session: Session, subject_ref: str, email: str) -> list[dict[str, Any]]:
        rows = session.execute(
            select(Delivery, Issue.number, Issue.subject, MailingList.slug)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .join(Issue, Issue.id == Delivery.issue_id)
            .join(MailingList, MailingList.id == Issue.list_id)
            .where(Subscriber.ref == subject_ref)
            .order_by(Delivery.id)
        )
        return [
            {
                "list": slug,
                "issue": number,
                "subject": subject,
                "status": d.status,
                "attempts": d.attempts,
                "queued_at": _iso(d.queued_at),
                "sent_at": _iso(d.sent_at),
                "smtp_reply": d.smtp_reply,
                "message_id": d.message_id,
            }
            for d, number, subject, slug in rows
        ]

    def erase(self, session: Session, subject_ref: str, email: str) -> None:
        subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.ref == subject_ref))
        if subscriber_id is not None:
            session.execute(delete(Delivery).where(Delivery.subscriber_id == subscriber_id))
