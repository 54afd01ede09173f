"""Suppressions: keyed hashes of addresses that must never be mailed or re-imported."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from consent.models import Suppression

EVERY_LIST = "*"


def address_hmac(secret_key: str, normalised_address: str) -> str:
    """HMAC-SHA256 of the normalised address; a plain hash could be reversed by guessing."""
    return hmac.new(
        secret_key.encode(), b"suppression:" + normalised_address.encode(), hashlib.sha256
    ).hexdigest()


def is_suppressed(session: Session, digest: str, list_slug: str) -> bool:
    found = session.scalar(
        select(Suppression.id)
        .where(Suppression.address_hmac == digest)
        .where(Suppression.scope.in_((list_slug, EVERY_LIST)))
        .limit(1)
    )
    return found is not None


def suppress(session: Session, digest: str, scope: str, reason: str, at: datetime) -> bool:
    """Add a suppression; False when the address was already suppressed in that scope."""
    existing = session.scalar(
        select(Suppression).where(Suppression.address_hmac == digest, Suppression.scope == scope)
    )
    if existing is not None:
        return False
    session.add(Suppression(address_hmac=digest, scope=scope, reason=reason, created_at=at))
    session.flush()
    return True


def lift(session: Session, digest: str, list_slug: str) -> int:
    """Remove suppressions a fresh double opt-in overrides (this list, or every list)."""
    result = session.execute(
        delete(Suppression)
        .where(Suppression.address_hmac == digest)
        .where(Suppression.scope.in_((list_slug, EVERY_LIST)))
    )
    return int(getattr(result, "rowcount", 0) or 0)
