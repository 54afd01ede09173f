"""What bounces keep about an address, forgotten when the person is erased (Art. 17).

Soft-bounce counts and unmatched reports know an address only by its keyed hash
(the suppression HMAC); erasure removes every row kept under it. An export has
never listed them: `mailer.app.subjects` joins this erasure to the deliveries' section.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from consent.suppression import address_hmac
from mailer.bounces.models import SoftBounce, UnmatchedReport


def erase(session: Session, secret_key: str, email: str) -> None:
    """Delete the soft bounces and unmatched reports kept under `email`'s keyed hash."""
    digest = address_hmac(secret_key, email.lower())
    session.execute(delete(SoftBounce).where(SoftBounce.address_hmac == digest))
    session.execute(delete(UnmatchedReport).where(UnmatchedReport.named.contains(digest)))
