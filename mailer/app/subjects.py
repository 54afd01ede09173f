"""What other domains hold about a person, handed to consent.rights for export and erasure.

consent/ never imports mailer/, so a domain that stores personal data contributes
a `consent.subject_data.SubjectData` here: its `export` adds a section to
`mailer consent export` and `GET /me/{token}/export`, its `erase` runs inside the
erasure's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consent.subject_data import SubjectData
from mailer.audience.subject import ProfileData
from mailer.bounces import subject as bounces
from mailer.contributions.subject import ContributionContacts
from mailer.delivery.subject import DeliveryData


class DeliveriesAndBounces:
    """The "deliveries" section: copies sent (delivery); erasing it also forgets the
    bounce records kept under the address's keyed hash (bounces), as it always has."""

    name = DeliveryData.name

    def __init__(self, secret_key: str) -> None:
        self.deliveries = DeliveryData()
        self.secret_key = secret_key

    def export(self, session: Session, subject_ref: str, email: str) -> Any:
        return self.deliveries.export(session, subject_ref, email)

    def erase(self, session: Session, subject_ref: str, email: str) -> None:
        self.deliveries.erase(session, subject_ref, email)
        bounces.erase(session, self.secret_key, email)


def contributions(secret_key: str) -> tuple[SubjectData, ...]:
    """Every domain's contribution, in the order its section appears in an export."""
    return (DeliveriesAndBounces(secret_key), ContributionContacts(), ProfileData())
