"""What the audience holds about a person (profile, topics, answers awaiting confirmation),
for their export and erasure: a `consent.subject_data.SubjectData`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import Subscriber
from mailer.audience import profiles


class ProfileData:
    name = "reader_profile"  # beside consent's own "profile" (the address, name, key)

    def _id(self, session: Session, subject_ref: str) -> int | None:
        return session.scalar(select(Subscriber.id).where(Subscriber.ref == subject_ref))

    def export(self, session: Session, subject_ref: str, email: str) -> Any:
        subscriber_id = self._id(session, subject_ref)
        return profiles.export_record(session, subscriber_id) if subscriber_id else {}

    def erase(self, session: Session, subject_ref: str, email: str) -> None:
        subscriber_id = self._id(session, subject_ref)
        if subscriber_id is not None:
            profiles.erase(session, subscriber_id)
