"""One metadata for Alembic: every domain's tables, registered by importing their models."""

from __future__ import annotations

from consent.models import Base
from mailer.accounts import models as accounts
from mailer.bounces import models as bounces
from mailer.cadence import models as cadence
from mailer.content import models as content
from mailer.delivery import models as delivery

metadata = Base.metadata
DOMAINS = (
    content,
    delivery,
    bounces,
    cadence,
    accounts,
)  # each module defines its tables on `metadata`
