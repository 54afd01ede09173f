"""Tables of the newsletter side. The consent tables live in consent.models."""

from __future__ import annotations

from consent.models import (  # noqa: F401  (re-exported: one metadata for Alembic)
    Base,
    ConsentEvent,
    ConsentText,
    EventDetail,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
    UTCDateTime,
)
