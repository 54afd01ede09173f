"""What other domains hold about a person, handed to consent.rights for export and erasure.

consent/ never imports mailer/, so a domain that stores personal data (the
delivery ledger, for one) contributes a `consent.subject_data.SubjectData` here: its
`export` adds a section to `mailer consent export` and `GET /me/{token}/export`,
its `erase` runs inside the erasure's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consent.subject_data import SubjectData

if TYPE_CHECKING:
    from mailer.app.wiring import Runtime


def contributions(runtime: Runtime) -> tuple[SubjectData, ...]:
    """Every domain's contribution, in the order its section appears in an export."""
    from mailer.delivery.subject import DeliveryData

    return (DeliveryData(runtime.settings),)
